"""A PagerDuty on 127.0.0.1 over real TLS: REST (on-call, users, incidents) and Events API v2.

TLS because python-pagerduty refuses any base URL but https://; the fake's throwaway trustme CA
is written to `ca_file`, which the test passes to the client as `tls.ca_file` (without it the
handshake must fail). Responses are built from PagerDuty's published OpenAPI examples in
`samples/` beside this module. The duplicate-`incident_key` 400 is documented but its
text is not; the body here follows PagerDuty's documented error shape (code 2001).
`answer_delay_s` makes `POST /incidents` create the incident and then answer late: the
"did the page go out?" case that the duplicate-key 400 exists for.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import ssl
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Middleware

from daemon.standins.faults import FaultPlan

SAMPLES = Path(__file__).resolve().parent / "samples"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN = ("triggered", "acknowledged")
TITLE_MAX_CHARS = 1024  # Events v2 summary (documented); applied to REST titles alike
SEVERITIES = ("critical", "error", "warning", "info")


def _sample(name: str) -> dict[str, Any]:
    sample: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return sample


def _error(status: int, code: int, message: str, *errors: str) -> web.Response:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = list(errors)
    return web.json_response({"error": body}, status=status)


def _invalid_event(*errors: str) -> web.Response:
    return web.json_response(
        {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)},
        status=400,
    )


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived, faults included: what a test counts and inspects."""

    api: str  # "rest" or "events"
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakePagerDuty:
    def __init__(self, *, token: str, ca_file: Path, routing_key: str | None = None) -> None:
        self.token = token
        self.routing_key = routing_key
        self.ca_file = ca_file
        self.faults = FaultPlan()
        self.requests: list[Recorded] = []
        self.page_attempts: list[dict[str, Any]] = []  # every POST /incidents body that got in
        self.pages: list[dict[str, Any]] = []  # incidents created, as PagerDuty returned them
        self.events: list[dict[str, Any]] = []  # every accepted Events API event
        self.alerts: list[dict[str, Any]] = []  # alerts opened through the Events API
        self.answer_delay_s = 0.0  # POST /incidents: create at once, answer this much later
        # When set, only these emails may be the `From` of a create: anyone else gets the 400
        # "Requester User Not Found" (code 1008) PagerDuty answers for an unknown user
        # (as quoted in github.com/dropbox/pygerduty/pull/64).
        self.requesters: set[str] | None = None
        self.services: dict[str, str] = {}  # id -> name: GET /services/{id}
        self._oncalls: dict[tuple[str, int], str] = {}  # (schedule, level) -> user id
        self._users: dict[str, dict[str, Any]] = {}
        self._oncalls_body: dict[str, Any] | None = None
        self._user_bodies: dict[str, dict[str, Any]] = {}
        self._rate_limited_s: list[int] = []
        self._ids = itertools.count(1)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(ca_file))
        self._server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(self._server_context)
        self._rest = TestServer(self._rest_app())
        self._events = TestServer(self._events_app())

    # --- lifecycle and addresses ---------------------------------------------------------------

    async def __aenter__(self) -> FakePagerDuty:
        await self._rest.start_server(ssl=self._server_context)
        await self._events.start_server(ssl=self._server_context)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._rest.close()
        await self._events.close()

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self._rest.port}"

    @property
    def events_url(self) -> str:
        return f"https://127.0.0.1:{self._events.port}"

    # --- what a test sets up -------------------------------------------------------------------

    def set_oncall(self, schedule_id: str, user_id: str, email: str,
                   escalation_level: int = 1, time_zone: str = "Etc/UTC") -> None:
        """`user_id` is on call on `schedule_id` (at that level) from now on."""
        self._oncalls[(schedule_id, escalation_level)] = user_id
        self.set_user(user_id, email, time_zone=time_zone)

    def set_user(self, user_id: str, email: str, *, name: str = "",
                 time_zone: str = "Etc/UTC") -> None:
        """A user as `GET /users/{id}` shows them. PagerDuty always fills `time_zone` (the
        account's when the user chose none), an IANA name like the sample's "America/Lima"."""
        self._users[user_id] = {
            "id": user_id, "type": "user", "name": name or email.split("@")[0],
            "summary": name or email, "email": email, "time_zone": time_zone,
            "self": f"{self.api_url}/users/{user_id}",
            "html_url": f"https://subdomain.pagerduty.com/users/{user_id}",
        }

    def set_oncalls_body(self, body: dict[str, Any]) -> None:
        """Answer `GET /oncalls` with exactly this body (a published sample), whatever is asked."""
        self._oncalls_body = body

    def set_user_body(self, user_id: str, body: dict[str, Any]) -> None:
        """Answer `GET /users/{user_id}` with exactly this body."""
        self._user_bodies[user_id] = body

    def rate_limit_next(self, reset_s: int) -> None:
        """The next REST request gets PagerDuty's 429 with `ratelimit-*` headers, no Retry-After."""
        self._rate_limited_s.append(reset_s)

    def resolve(self, incident_id: str) -> None:
        """Someone resolved the incident in PagerDuty: its key is free again."""
        [incident] = [i for i in self.pages if i["id"] == incident_id]
        incident["status"] = "resolved"

    # --- plumbing ------------------------------------------------------------------------------

    def _recorder(self, api: str) -> Middleware:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.requests.append(Recorded(
                api, request.method, request.path, tuple(request.query.items()),
                dict(request.headers), await request.read(),
            ))
            return await handler(request)

        return record

    @web.middleware
    async def _rest_gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Token token={self.token}":
            return _error(401, 2006, "Authentication failed")
        if self._rate_limited_s:
            reset_s = self._rate_limited_s.pop(0)
            response = _error(429, 2020, "Rate Limit Exceeded")
            response.headers.update({"ratelimit-limit": "960", "ratelimit-remaining": "0",
                                     "ratelimit-reset": str(reset_s)})
            return response
        return await handler(request)

    def _rest_app(self) -> web.Application:
        app = web.Application(middlewares=[self._recorder("rest"), self.faults.middleware,
                                           self._rest_gate])
        app.router.add_get("/oncalls", self._get_oncalls)
        app.router.add_get("/users/{id}", self._get_user)
        app.router.add_get("/users", self._list_users)
        app.router.add_get("/services/{id}", self._get_service)
        app.router.add_post("/incidents", self._post_incident)
        app.router.add_get("/incidents", self._get_incidents)
        return app

    def _events_app(self) -> web.Application:
        app = web.Application(middlewares=[self._recorder("events"), self.faults.middleware])
        app.router.add_post("/v2/enqueue", self._enqueue)
        return app

    # --- REST API ------------------------------------------------------------------------------

    async def _get_oncalls(self, request: web.Request) -> web.Response:
        if self._oncalls_body is not None:
            return web.json_response(self._oncalls_body)
        schedules = request.query.getall("schedule_ids[]", [])
        expand = "users" in request.query.getall("include[]", [])
        entries = []
        for (schedule_id, level), user_id in sorted(self._oncalls.items(), key=lambda kv: kv[0]):
            if schedules and schedule_id not in schedules:
                continue
            user = self._users[user_id]
            entries.append({
                "user": user if expand else {
                    "id": user_id, "type": "user_reference", "summary": user["summary"],
                    "self": user["self"], "html_url": user["html_url"]},
                "schedule": {"id": schedule_id, "type": "schedule_reference"},
                "escalation_policy": {"id": "PEP0001", "type": "escalation_policy_reference"},
                "escalation_level": level, "start": None, "end": None,
            })
        return web.json_response({"oncalls": entries, "limit": 25, "offset": 0, "more": False,
                                  "total": None})

    async def _get_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["id"]
        if user_id in self._user_bodies:
            return web.json_response(self._user_bodies[user_id])
        if user_id not in self._users:
            return _error(404, 2100, "Not Found")
        return web.json_response({"user": self._users[user_id]})

    async def _list_users(self, request: web.Request) -> web.Response:
        """`query` matches the start of a name or email, as PagerDuty's does; the requesters
        (`From` emails allowed to create) are users too."""
        query = request.query.get("query", "").casefold()
        emails = {user["email"] for user in self._users.values()} | (self.requesters or set())
        found = [{"id": f"PU{index:05d}", "type": "user", "email": email,
                  "name": email.split("@")[0]}
                 for index, email in enumerate(sorted(emails))
                 if email.casefold().startswith(query)]
        return web.json_response({"users": found, "limit": 25, "offset": 0, "more": False,
                                  "total": None})

    async def _get_service(self, request: web.Request) -> web.Response:
        service_id = request.match_info["id"]
        if service_id not in self.services:
            return _error(404, 2100, "Not Found")
        return web.json_response({"service": {
            "id": service_id, "type": "service", "name": self.services[service_id],
            "summary": self.services[service_id], "status": "active"}})

    async def _post_incident(self, request: web.Request) -> web.Response:
        if not request.headers.get("From"):
            return _error(400, 2011, "You must specify a requester_id to perform this action")
        if self.requesters is not None and request.headers["From"] not in self.requesters:
            return _error(400, 1008, "Requester User Not Found")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 2001, "Invalid Input Provided", "Body is not JSON")
        self.page_attempts.append(body)
        incident = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(incident, dict) or incident.get("type") != "incident":
            return _error(400, 2001, "Invalid Input Provided", "incident.type must be incident")
        service_id = (incident.get("service") or {}).get("id")
        if not incident.get("title") or not service_id:
            return _error(400, 2001, "Invalid Input Provided", "title and service are required")
        if len(incident["title"]) > TITLE_MAX_CHARS:
            return _error(400, 2001, "Invalid Input Provided",
                          f"Title is too long (maximum is {TITLE_MAX_CHARS} characters)")
        key = incident.get("incident_key")
        if key is not None and any(i["incident_key"] == key and i["service"]["id"] == service_id
                                   and i["status"] in OPEN for i in self.pages):
            return _error(400, 2001, "Invalid Input Provided",
                          f"Open incident with key '{key}' already exists for this service")
        number = next(self._ids)
        created = copy.deepcopy(_sample("post_incidents_201.json")["incident"])
        incident_id = f"Q{number:06d}"
        created.update({
            "id": incident_id, "incident_number": number, "title": incident["title"],
            "summary": f"[#{number}] {incident['title']}", "status": "triggered",
            "self": f"{self.api_url}/incidents/{incident_id}",
            "html_url": f"https://subdomain.pagerduty.com/incidents/{incident_id}",
            "incident_key": key if key is not None else uuid.uuid4().hex,
            "urgency": incident.get("urgency", "high"),
            "service": {"id": service_id, "type": "service_reference"},
        })
        self.pages.append(created)
        if self.answer_delay_s:
            await asyncio.sleep(self.answer_delay_s)
        return web.json_response({"incident": created}, status=201)

    async def _get_incidents(self, request: web.Request) -> web.Response:
        key = request.query.get("incident_key")
        services = request.query.getall("service_ids[]", [])
        statuses = request.query.getall("statuses[]", [])
        found = [i for i in self.pages
                 if (key is None or i["incident_key"] == key)
                 and (not services or i["service"]["id"] in services)
                 and (not statuses or i["status"] in statuses)]
        return web.json_response({"incidents": found, "limit": 25, "offset": 0, "more": False,
                                  "total": None})

    # --- Events API v2 -------------------------------------------------------------------------

    async def _enqueue(self, request: web.Request) -> web.Response:
        try:
            event = await request.json()
        except ValueError:
            return _invalid_event("Body is not JSON")
        if not isinstance(event, dict) or event.get("routing_key") != self.routing_key:
            return _invalid_event("Invalid routing key")
        action = event.get("event_action")
        payload = event.get("payload") or {}
        if action not in ("trigger", "acknowledge", "resolve"):
            return _invalid_event("'event_action' is invalid")
        if action == "trigger" and not (payload.get("summary") and payload.get("source")
                                        and payload.get("severity") in SEVERITIES):
            return _invalid_event("'payload' needs summary, source and a valid severity")
        if len(str(payload.get("summary", ""))) > TITLE_MAX_CHARS:
            return _invalid_event(
                f"'summary' is too long (maximum is {TITLE_MAX_CHARS} characters)")
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        self.events.append(event)
        open_alert = next((a for a in self.alerts if a["dedup_key"] == dedup_key
                           and a["status"] == "triggered"), None)
        if action == "trigger" and open_alert is None:
            self.alerts.append({"dedup_key": dedup_key, "status": "triggered",
                                "payload": payload, "links": event.get("links", [])})
        elif action == "resolve" and open_alert is not None:
            open_alert["status"] = "resolved"
        answer = _sample("events_v2_enqueue_202.json") | {"dedup_key": dedup_key}
        return web.json_response(answer, status=202)

"""PagerDuty as the `Pager`: the SMOC from `GET /oncalls`, Tier 2 paged idempotently.

Built on `pagerduty` (python-pagerduty), the maintained successor of the deprecated pdpyras.
That client is synchronous and, left alone, retries a 429 forever with blocking `time.sleep`s
and network errors three times with sleeps. Here every call runs in a thread
(`asyncio.to_thread`) and the package is told to give up at once, so a failure comes back to us
and is *classified* (`Retry` with the vendor's Retry-After, or `Permanent`); the job runner owns
the timing, as for every other integration.

Paging prefers the REST API (`POST /incidents` on the Tier 2 service): it returns the incident
and its URL, and PagerDuty refuses a second open incident with the same `incident_key`, which is
how a retried page stays one page. Without a service id the Events API v2 is used, deduplicated
on `dedup_key` instead.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx2
import pagerduty

from daemon.clock import Clock, SystemClock
from daemon.integrations.base import OnCall, PageRequest, PageResult
from daemon.integrations.failures import Permanent, Retry, http_failure, transport_failure
from daemon.integrations.shorten import shorten
from daemon.integrations.tls import trusted_context
from daemon.settings import ConfigError, PagerDutySettings, TlsSettings

API_URL = "https://api.pagerduty.com"
EVENTS_URL = "https://events.pagerduty.com"
EVENT_SOURCE = "tier2gate"
TITLE_MAX_CHARS = 1024
"""Events API v2 `payload.summary`: "The maximum permitted length of this property is 1024
characters"; a longer one is a 400, i.e. no page at all
(https://v2.developer.pagerduty.com/docs/send-an-event-events-api-v2, now
github.com/PagerDuty/developer-docs docs/events-API-v2/02-Trigger-Events.md). The summary becomes
the incident's title; the REST `POST /incidents` reference publishes no maximum for `title`
(https://developer.pagerduty.com/api-reference/b3A6Mjc0ODE0MA-create-an-incident), so the same
bound is applied there. The whole title stays in `details`, which the paged engineer reads."""
_OPEN_STATUSES = ["triggered", "acknowledged"]
ZONE_CACHE_S = 6 * 3600.0  # people rarely move time zones; a changed profile shows within hours
T = TypeVar("T")
C = TypeVar("C", bound=pagerduty.ApiClient)


class Client:
    """One PagerDuty account: REST (SMOC, incidents) and optionally an Events API routing key."""

    def __init__(
        self,
        *,
        api_token: str | None,
        from_email: str | None,
        api_url: str = API_URL,
        events_url: str = EVENTS_URL,
        smoc_schedule_id: str | None = None,
        tier2_schedule_id: str | None = None,
        tier2_service_id: str | None = None,
        tier2_routing_key: str | None = None,
        ca_file: Path | None = None,
        timeout_s: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()  # what a Retry-After HTTP-date is measured from
        self._from_email = from_email
        self._smoc_schedule_id = smoc_schedule_id
        self._tier2_schedule_id = tier2_schedule_id
        self._zones: dict[str, tuple[float, str | None]] = {}  # user id -> (read at, zone)
        self._tier2_service_id = tier2_service_id
        self._secrets = [s for s in (api_token, tier2_routing_key) if s]
        # PagerDuty asks for requests to be serialised per key; the package's call
        # bookkeeping is not thread-safe either.
        self._lock = asyncio.Lock()
        verify = trusted_context(ca_file)
        self._rest: pagerduty.RestApiV2Client | None = None
        self._events: pagerduty.EventsApiV2Client | None = None
        try:
            if api_token:
                self._rest = _bounded(pagerduty.RestApiV2Client(
                    api_token, default_from=from_email, base_url=api_url, verify=verify
                ), timeout_s)
            if tier2_routing_key:
                self._events = _bounded(pagerduty.EventsApiV2Client(
                    tier2_routing_key, base_url=events_url, verify=verify
                ), timeout_s)
        except pagerduty.UrlError:
            raise ConfigError(
                "pagerduty.api_url and pagerduty.events_url must start with https:// "
                "(the PagerDuty client refuses anything else)"
            ) from None

    @classmethod
    def from_settings(cls, pagerduty: PagerDutySettings, tls: TlsSettings,
                      clock: Clock | None = None) -> Client:
        return cls(
            api_token=pagerduty.api_token.get_secret_value() if pagerduty.api_token else None,
            from_email=pagerduty.from_email,
            api_url=pagerduty.api_url,
            events_url=pagerduty.events_url,
            smoc_schedule_id=pagerduty.smoc_schedule_id,
            tier2_schedule_id=pagerduty.tier2_schedule_id,
            tier2_service_id=pagerduty.tier2_service_id,
            tier2_routing_key=(pagerduty.tier2_routing_key.get_secret_value()
                               if pagerduty.tier2_routing_key else None),
            ca_file=tls.ca_file,
            clock=clock,
        )

    async def close(self) -> None:
        """Release the connection pools."""
        for client in (self._rest, self._events):
            if client is not None:
                client.close()

    async def smoc_email(self, schedule_id: str | None = None) -> str | None:
        """Who is on call now on `schedule_id` (default: the SMOC schedule of the settings); the
        earliest entry at the lowest level if PagerDuty lists several
        (https://developer.pagerduty.com/api-reference/3a6b910f11050-list-all-of-the-on-calls).

        `include[]=users` usually saves the second call; the user is looked up only when the
        answer carries a bare reference.
        """
        schedule_id = schedule_id or self._smoc_schedule_id
        if not schedule_id:
            return None
        user = await self._on_call("SMOC", schedule_id)
        if user is None:
            return None
        included = user.get("email")
        if isinstance(included, str) and included:
            return included
        found = await self._user("look up the SMOC user", str(user["id"]))
        email = found.get("email")
        if not isinstance(email, str) or not email:
            raise Retry(f"look up the SMOC user: PagerDuty user {user['id']} has no email")
        return email

    async def tier2_on_call(self) -> tuple[str, str] | None:
        """(id, name) of the Tier 2 engineer on call now on `pagerduty.tier2_schedule_id`
        (`GET /oncalls`, https://developer.pagerduty.com/api-reference/ — "List all of the
        on-calls"); None without a schedule or when nobody is on call."""
        if not self._tier2_schedule_id:
            return None
        user = await self._on_call("Tier 2", self._tier2_schedule_id)
        if user is None:
            return None
        return str(user["id"]), str(user.get("name") or user.get("summary") or user["id"])

    async def _on_call(self, who: str, schedule_id: str) -> dict[str, Any] | None:
        """The user entry on call now on `schedule_id` (at least its `id`), or None."""
        rest = self._rest_for(f"resolve the {who} on call")
        oncalls = await self._run(f"list {who} on-calls", rest.rget, "/oncalls", params={
            "schedule_ids[]": [schedule_id], "earliest": "true", "include[]": ["users"],
        })
        entries = [e for e in _dicts(oncalls) if _dict(e.get("schedule")).get("id") == schedule_id]
        if not entries:
            return None
        entry = min(entries, key=_escalation_level)
        user = _dict(entry.get("user"))
        user_id = user.get("id")
        if not isinstance(user_id, str) or not user_id:
            raise Retry(f"list {who} on-calls: PagerDuty listed an on-call entry without a "
                        "user id")
        return user

    async def _user(self, what: str, user_id: str) -> dict[str, Any]:
        rest = self._rest_for(what)
        return _dict(await self._run(what, rest.rget, f"/users/{quote(user_id, safe='')}"))

    async def user_time_zone(self, user_id: str) -> str | None:
        """The `time_zone` of the PagerDuty user `user_id` (`GET /users/{id}`,
        https://developer.pagerduty.com/api-reference/ — "Get a user": "The preferred time
        zone name. If null, the account's time zone will be used"), an IANA name such as
        "America/Lima". Remembered for `ZONE_CACHE_S` per user, answers and "none" alike, so a
        burst of pages costs one lookup per responder; a failure (`Retry`/`Permanent`) is not
        remembered."""
        cached = self._zones.get(user_id)
        now_s = self._clock.now()
        if cached is not None and now_s - cached[0] < ZONE_CACHE_S:
            return cached[1]
        found = await self._user("look up a responder's time zone", user_id)
        zone = found.get("time_zone")
        answer = zone if isinstance(zone, str) and zone else None
        self._zones[user_id] = (now_s, answer)
        return answer

    async def user_email(self, user_id: str) -> str | None:
        """The `email` of the PagerDuty user `user_id` (`GET /users/{id}`, "Get a user",
        https://developer.pagerduty.com/api-reference/), so a responder can be mentioned in
        Slack by the same address; None when the profile has none."""
        found = await self._user("look up a responder's email", user_id)
        email = found.get("email")
        return email if isinstance(email, str) and email else None

    async def on_call(self, schedule_id: str, since: datetime, until: datetime
                      ) -> tuple[OnCall, ...]:
        """Every shift on the schedule at some time in [since, until), lowest escalation
        level first, then by shift start: `GET /oncalls` with `since`/`until` lists the
        entries of that range ("List all of the on-calls",
        https://developer.pagerduty.com/api-reference/3a6b910f11050-list-all-of-the-on-calls).
        """
        rest = self._rest_for("look up Tier 2 on call")
        oncalls = await self._run("list Tier 2 on-calls", rest.rget, "/oncalls", params={
            "schedule_ids[]": [schedule_id], "include[]": ["users"],
            "since": since.isoformat(), "until": until.isoformat(),
        })
        entries = [e for e in _dicts(oncalls) if _dict(e.get("schedule")).get("id") == schedule_id]
        shifts = []
        for entry in sorted(entries, key=lambda e: (_escalation_level(e), str(e.get("start")))):
            user = _dict(entry.get("user"))
            email, name = user.get("email"), user.get("name") or user.get("summary")
            shifts.append(OnCall(name=name if isinstance(name, str) else "",
                                 email=email if isinstance(email, str) else "",
                                 start=_when(entry.get("start")), end=_when(entry.get("end"))))
        return tuple(shifts)

    async def page(self, request: PageRequest) -> PageResult:
        """Create the Tier 2 incident (REST) or trigger the alert (Events API), once per key."""
        if self._tier2_service_id:
            return await self._create_incident(self._tier2_service_id, request)
        if self._events is not None:
            return await self._trigger(self._events, request)
        raise Permanent("no Tier 2 service or routing key configured")

    async def _create_incident(self, service_id: str, request: PageRequest) -> PageResult:
        rest = self._rest_for("page Tier 2")
        if not self._from_email:
            raise Permanent("pagerduty.from_email is not configured; PagerDuty requires it to "
                            "create incidents")
        incident = {
            "type": "incident",
            "title": shorten(request.title, TITLE_MAX_CHARS),
            "service": {"id": service_id, "type": "service_reference"},
            "urgency": "high",
            "incident_key": request.key,
            "body": {"type": "incident_body", "details": request.details},
        }
        try:
            created = _dict(await self._thread(rest.rpost, "/incidents", json=incident))
        except pagerduty.Error as exc:
            # The text of PagerDuty's duplicate-key 400 is not a documented contract, so any
            # 400 is checked against the open incidents; a 400 for anything else finds none.
            if exc.response is None or exc.response.status_code != 400:
                raise self._classify("create Tier 2 incident", exc) from None
            existing = await self._open_incident(rest, service_id, request.key)
            if existing is None:
                raise self._classify("create Tier 2 incident", exc) from None
            return PageResult(str(existing["id"]), str(existing.get("html_url") or ""),
                              already_open=True)
        if not created.get("id"):
            raise Retry("create Tier 2 incident: PagerDuty answered without an incident id")
        return PageResult(str(created["id"]), str(created.get("html_url") or ""))

    async def _open_incident(self, rest: pagerduty.RestApiV2Client, service_id: str,
                             key: str) -> dict[str, Any] | None:
        incidents = await self._run("find the open Tier 2 incident", rest.rget, "/incidents",
                                    params={"incident_key": key, "service_ids[]": [service_id],
                                            "statuses[]": _OPEN_STATUSES, "date_range": "all"})
        # Matched again here: a filter the server ignored must not make us claim a stranger.
        for incident in _dicts(incidents):
            if (incident.get("incident_key") == key and incident.get("id")
                    and incident.get("status") in _OPEN_STATUSES):
                return incident
        return None

    async def _trigger(self, events: pagerduty.EventsApiV2Client,
                       request: PageRequest) -> PageResult:
        dedup_key = await self._run(
            "trigger Tier 2 alert", events.trigger,
            summary=shorten(request.title, TITLE_MAX_CHARS),
            source=EVENT_SOURCE,
            dedup_key=request.key,
            severity="critical",
            custom_details={"details": request.details, "escalation_id": request.escalation_id},
            links=[{"href": href, "text": text} for text, href in request.links.items()],
        )
        return PageResult(incident_id=str(dedup_key))

    async def service_name(self, service_id: str) -> str:
        """`GET /services/{id}` (https://developer.pagerduty.com/api-reference/ — "Get a
        service"): a 404 is a wrong id, a 401 a bad token."""
        rest = self._rest_for("read the Tier 2 service")
        found = _dict(await self._run("read the service", rest.rget,
                                      f"/services/{quote(service_id, safe='')}"))
        return str(found.get("name") or found.get("summary") or service_id)

    async def user_exists(self, email: str) -> bool:
        """`GET /users?query=` matches names and emails by prefix; only the exact login email
        counts, which is what the `From` header of a create must name."""
        rest = self._rest_for("look up the from_email user")
        users = await self._run("list users", rest.rget, "/users", params={"query": email})
        return any(str(user.get("email", "")).casefold() == email.casefold()
                   for user in _dicts(users))

    def _rest_for(self, what: str) -> pagerduty.RestApiV2Client:
        if self._rest is None:
            raise Permanent(f"cannot {what}: pagerduty.api_token is not configured")
        return self._rest

    async def _thread(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._lock:
            return await asyncio.to_thread(call, *args, **kwargs)

    async def _run(self, what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await self._thread(call, *args, **kwargs)
        except pagerduty.Error as exc:
            raise self._classify(what, exc) from None

    def _classify(self, what: str, exc: pagerduty.Error) -> Retry | Permanent:
        """Our own words, never the package's: its 401 message quotes part of the token."""
        what = f"PagerDuty {what}"
        response = exc.response
        if response is None:
            cause = exc.__cause__ or exc
            return transport_failure(what, cause,
                                     timed_out=isinstance(cause, httpx2.TimeoutException))
        return http_failure(what, response.status_code, headers=response.headers,
                            detail=_error_detail(response), secrets=self._secrets,
                            now_s=self._clock.now())


def _bounded(client: C, timeout_s: float) -> C:
    # `retry[429] = 1` takes 429 out of the package's endless loop; `max_http_attempts = -1`
    # then makes its attempt check (`sum(attempts) > max_http_attempts`) true before the first
    # sleep, so the first 429 comes straight back. 0 would still allow one blocking retry.
    # It also replaces the Events client's preset 5xx retries. Network errors and timeouts
    # raise at once with `max_network_attempts = 0`.
    client.retry = {429: 1}
    client.max_http_attempts = -1
    client.max_network_attempts = 0
    # the package passes this on every request, over httpx2's own; it annotates an int but
    # hands the value to httpx2, which takes seconds as a float
    client.timeout = timeout_s  # type: ignore[assignment]
    return client


def _error_detail(response: httpx2.Response) -> str:
    """PagerDuty's own explanation (`error.message`, `errors`), short, for the operator."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return ""
    parts = [str(error.get("message") or "")]
    errors = error.get("errors")
    if isinstance(errors, list):
        parts += [str(item) for item in errors]
    return "; ".join(part for part in parts if part)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _when(value: object) -> datetime | None:
    """An ISO 8601 time from PagerDuty, or None (absent, or not a time)."""
    if not isinstance(value, str):
        return None
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def _escalation_level(entry: dict[str, Any]) -> float:
    level = entry.get("escalation_level")
    return float(level) if isinstance(level, int | float) else math.inf

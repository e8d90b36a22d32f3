"""Zendesk Support and Jira Service Management as local aiohttp servers, for the real clients.

Each fake serves the endpoints the desk clients reach, with the vendor's basic auth, status
codes, error bodies and limits (an unknown ticket 404, a comment over the limit refused, 429
with Retry-After when `rate_limited`), records every request and keeps every comment by
ticket, so a test can say "this note, once, internal". `signed` builds a delivery signed the
way the vendor signs its webhooks, for tests and the demo.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Self

from aiohttp import web
from aiohttp.test_utils import TestServer

from daemon.ingress.signatures import sign_jira, sign_zendesk
from daemon.standins.faults import FaultPlan

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ZENDESK_COMMENT, JSM_COMMENT = 65_535, 32_767  # sources in daemon/integrations/desk/*.py


@dataclass(frozen=True)
class Comment:
    body: str
    public: bool


class FakeDesk:
    """Server lifecycle, recording, faults, basic auth and comments by ticket."""

    def __init__(self, user: str, token: str) -> None:
        self.credentials = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
        self.active = True  # the token's own user, as the "who am I" endpoint reports it
        self.faults = FaultPlan()
        self.requests: list[tuple[str, str]] = []
        self.comments: dict[str, list[Comment]] = {}
        self.rate_limited = 0  # the next this many requests are answered 429
        # The next this many comments are kept but their answer is lost (the connection drops):
        # the "did it happen?" case that the client's marker lookup exists for.
        self.lose_answers = 0
        self._server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return str(self._server.make_url("")).rstrip("/")

    def revoke(self) -> None:
        """The API token is revoked: every request is answered 401 from now on."""
        self.credentials = "Basic revoked"

    def add_ticket(self, ticket: str) -> None:
        self.comments.setdefault(ticket, [])

    def notes(self, ticket: str) -> list[str]:
        """The internal notes on a ticket, in order."""
        return [c.body for c in self.comments.get(ticket, []) if not c.public]

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        app = web.Application(middlewares=[self._record, self.faults.middleware, self._auth])
        self.routes(app)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server(ssl=ssl_context)

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def not_found(self) -> web.HTTPException:
        raise NotImplementedError

    def ticket(self, request: web.Request) -> list[Comment]:
        found = self.comments.get(request.match_info["ticket"])
        if found is None:
            raise self.not_found()
        return found

    def kept(self, request: web.Request) -> None:
        """After a comment was kept: drop the connection instead of answering, if asked to."""
        if self.lose_answers:
            self.lose_answers -= 1
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("answer lost after the comment was kept")

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Authorization") != self.credentials:
            return web.json_response({"error": "Couldn't authenticate you"}, status=401)
        if self.rate_limited:
            self.rate_limited -= 1
            return web.json_response({"error": "APIRateLimitExceeded"}, status=429,
                                     headers={"Retry-After": "3"})
        return await handler(request)


class FakeZendesk(FakeDesk):
    """`PUT /api/v2/tickets/{id}.json` (a comment), `GET …/comments.json` (cursor pages of
    `page_size`, default 100 as the client asks) and `GET /api/v2/users/me.json` (the token's
    user with its `role`; only an agent or admin may comment, as in Zendesk)."""

    page_size = 100

    def __init__(self, email: str, token: str) -> None:
        super().__init__(f"{email}/token", token)
        self.email = email
        self.role = "agent"

    def routes(self, app: web.Application) -> None:
        app.router.add_put("/api/v2/tickets/{ticket}.json", self._update)
        app.router.add_get("/api/v2/tickets/{ticket}/comments.json", self._list)
        app.router.add_get("/api/v2/users/me.json", self._me)

    async def _me(self, _request: web.Request) -> web.Response:
        return web.json_response({"user": {"id": 1, "email": self.email, "role": self.role,
                                           "active": self.active}})

    def not_found(self) -> web.HTTPException:
        return web.HTTPNotFound(text=json.dumps({"error": "RecordNotFound",
                                                 "description": "Not found"}),
                                content_type="application/json")

    async def _update(self, request: web.Request) -> web.Response:
        if self.role not in ("agent", "admin"):
            return web.json_response({"error": "Forbidden", "description":
                                      "You do not have access to this page."}, status=403)
        comments = self.ticket(request)
        comment = (await request.json()).get("ticket", {}).get("comment", {})
        body = comment.get("body", "")
        if not isinstance(body, str) or len(body) > ZENDESK_COMMENT:
            return web.json_response({"error": "RecordInvalid", "description":
                                      "Record validation errors"}, status=422)
        comments.append(Comment(body, comment.get("public", True) is not False))
        self.kept(request)
        return web.json_response({"ticket": {"id": int(request.match_info["ticket"])}})

    async def _list(self, request: web.Request) -> web.Response:
        comments = self.ticket(request)
        start = int(request.query.get("page[after]", "0"))
        page = comments[start:start + self.page_size]
        more = start + self.page_size < len(comments)
        following = (f"{self.url}{request.path}?page[size]={self.page_size}"
                     f"&page[after]={start + self.page_size}")
        return web.json_response({
            "comments": [{"id": start + i, "body": c.body, "public": c.public}
                         for i, c in enumerate(page)],
            "meta": {"has_more": more}, "links": {"next": following if more else None}})

    def signed(self, ticket: dict[str, object], secret: str, timestamp: str,
               invocation_id: str) -> tuple[bytes, dict[str, str]]:
        """A trigger delivery as Zendesk sends it: the body and its signed headers."""
        body = json.dumps({"ticket": ticket}).encode()
        headers = sign_zendesk(body, secret, timestamp, invocation_id)
        return body, {**headers, "Content-Type": "application/json"}


class FakeJsm(FakeDesk):
    """`POST /rest/servicedeskapi/request/{key}/comment` and its `GET` (pages by start/limit),
    and `GET /rest/api/3/myself` (the token's account)."""

    def __init__(self, user: str, token: str) -> None:
        super().__init__(user, token)
        self.email = user

    def routes(self, app: web.Application) -> None:
        path = "/rest/servicedeskapi/request/{ticket}/comment"
        app.router.add_post(path, self._add)
        app.router.add_get(path, self._list)
        app.router.add_get("/rest/api/3/myself", self._myself)

    async def _myself(self, _request: web.Request) -> web.Response:
        return web.json_response({"accountId": "5b10ac8d82e05b22cc7d4ef5",
                                  "emailAddress": self.email, "displayName": "tier2gate",
                                  "active": self.active, "accountType": "atlassian"})

    def not_found(self) -> web.HTTPException:
        return web.HTTPNotFound(text=json.dumps({"errorMessage": "The request does not exist."}),
                                content_type="application/json")

    async def _add(self, request: web.Request) -> web.Response:
        comments = self.ticket(request)
        sent = await request.json()
        body = sent.get("body", "")
        if not isinstance(body, str) or len(body) > JSM_COMMENT:
            return web.json_response({"errorMessage": "The comment is too long."}, status=400)
        comments.append(Comment(body, sent.get("public", True) is not False))
        self.kept(request)
        return web.json_response({"id": str(len(comments)), "body": body,
                                  "public": sent.get("public", True)}, status=201)

    async def _list(self, request: web.Request) -> web.Response:
        comments = self.ticket(request)
        start, limit = int(request.query.get("start", "0")), int(request.query.get("limit", "50"))
        page = comments[start:start + limit]
        return web.json_response({
            "start": start, "limit": limit, "size": len(page),
            "isLastPage": start + limit >= len(comments),
            "values": [{"id": str(start + i), "body": c.body, "public": c.public}
                       for i, c in enumerate(page)]})

    def signed(self, payload: dict[str, object], secret: str, identifier: str
               ) -> tuple[bytes, dict[str, str]]:
        """An admin webhook delivery as Jira sends it when registered with a secret."""
        body = json.dumps(payload).encode()
        return body, {**sign_jira(body, secret, identifier), "Content-Type": "application/json"}

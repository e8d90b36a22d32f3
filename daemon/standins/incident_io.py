"""An incident.io API on 127.0.0.1 (plain HTTP, or TLS with `ssl_context`):
`GET /v2/incidents/{id}` from a dict.

The test fills `incidents` (id -> incident object, e.g. a published webhook example's incident,
which has the same shape) and queues outages on `faults`.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from daemon.standins.faults import FaultPlan

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeIncidentIo:
    def __init__(self, *, token: str, ssl_context: ssl.SSLContext | None = None) -> None:
        self.token = token
        self._ssl = ssl_context
        self.faults = FaultPlan()
        self.incidents: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, headers), faults included
        app = web.Application(middlewares=[self._record, self.faults.middleware, self._auth])
        app.router.add_get("/v2/incidents/{id}", self._get_incident)
        self._server = TestServer(app)

    async def __aenter__(self) -> FakeIncidentIo:
        await self._server.start_server(ssl=self._ssl)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._server.close()

    @property
    def api_url(self) -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://127.0.0.1:{self._server.port}"

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        return await handler(request)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"type": "authentication_error", "status": 401,
                                      "errors": [{"code": "unauthorized",
                                                  "message": "Invalid API key"}]}, status=401)
        return await handler(request)

    async def _get_incident(self, request: web.Request) -> web.Response:
        incident = self.incidents.get(request.match_info["id"])
        if incident is None:
            return web.json_response({"type": "not_found", "status": 404,
                                      "errors": [{"code": "not_found",
                                                  "message": "Not found"}]}, status=404)
        return web.json_response({"incident": incident})

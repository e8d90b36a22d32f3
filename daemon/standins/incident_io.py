"""An incident.io API on 127.0.0.1 (plain HTTP, or TLS with `ssl_context`):
`GET /v2/incidents/{id}` from a dict,
and the custom fields (`GET /v2/custom_fields`, `GET /v1/custom_field_options`).

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
        self.custom_fields: list[dict[str, Any]] = []  # as listed, each with its `options`
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, headers), faults included
        app = web.Application(middlewares=[self._record, self.faults.middleware, self._auth])
        app.router.add_get("/v2/incidents/{id}", self._get_incident)
        app.router.add_get("/v2/custom_fields", self._list_custom_fields)
        app.router.add_get("/v1/custom_field_options", self._list_options)
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

    def add_custom_field(self, name: str, field_type: str, options: tuple[str, ...] = ()
                         ) -> None:
        """A custom field as an admin creates it in incident.io's settings."""
        field_id = f"01FCF{len(self.custom_fields):05d}"
        self.custom_fields.append({
            "id": field_id, "name": name, "field_type": field_type, "description": name,
            "options": [{"id": f"{field_id}O{n}", "custom_field_id": field_id, "value": value,
                         "sort_key": n} for n, value in enumerate(options)]})

    async def _list_custom_fields(self, request: web.Request) -> web.Response:
        return web.json_response({"custom_fields": [
            {key: value for key, value in field.items() if key != "options"}
            for field in self.custom_fields]})

    async def _list_options(self, request: web.Request) -> web.Response:
        """One page per request: `page_size` options after the `after` cursor."""
        field_id = request.query.get("custom_field_id", "")
        options: list[dict[str, Any]] = next(
            (f["options"] for f in self.custom_fields if f["id"] == field_id), [])
        after = request.query.get("after", "")
        start = next((n + 1 for n, o in enumerate(options) if o["id"] == after), 0)
        page = options[start:start + int(request.query.get("page_size", "25"))]
        more = start + len(page) < len(options)
        return web.json_response({"custom_field_options": page, "pagination_meta": {
            "page_size": len(page), **({"after": page[-1]["id"]} if more else {})}})

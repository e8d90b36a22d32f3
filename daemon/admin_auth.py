"""Who may use the admin listener (dashboard, API, metrics, detailed readiness).

On a loopback address only this machine reaches it, which is the whole check (the demo and
`kubectl port-forward` need no account). Bound anywhere else, a request needs
`Authorization: Bearer <admin.token>` (scripts, Prometheus), or the identity header that a
named authenticating proxy sets (`admin.proxy_user_header`; oauth2-proxy sends
`X-Forwarded-User`), else 401. With neither configured, everything is refused: a read side
that leaks incident names to the network is worse than one nobody can open.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from daemon.settings import AdminSettings

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """Only an address that can never be reached from another machine counts; a host name
    other than `localhost` might resolve anywhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AdminAccess:
    open: bool
    token: bytes | None
    proxy_user_header: str | None

    @classmethod
    def from_settings(cls, admin: AdminSettings) -> AdminAccess:
        token = admin.token.get_secret_value().encode() if admin.token else None
        return cls(is_loopback(admin.host), token, admin.proxy_user_header or None)

    def describe(self) -> str:
        """What the startup log says about access: never the token itself."""
        if self.open:
            return "loopback: no credentials needed"
        ways = []
        if self.token is not None:
            ways.append("Authorization: Bearer <admin.token>")
        if self.proxy_user_header:
            ways.append(f"the {self.proxy_user_header} header of the authenticating proxy")
        if not ways:
            return "no admin.token and no admin.proxy_user_header: every request is refused"
        return " or ".join(ways)

    def allows(self, request: web.Request) -> bool:
        if self.open:
            return True
        if self.token is not None:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                    given.strip().encode("utf-8", "surrogateescape"), self.token):
                return True
        return bool(self.proxy_user_header and request.headers.get(self.proxy_user_header))

    def middleware(self) -> Middleware:
        @web.middleware
        async def require_credentials(request: web.Request, handler: _Handler
                                      ) -> web.StreamResponse:
            if not self.allows(request):
                raise web.HTTPUnauthorized(
                    text=json.dumps({"error": "the admin listener needs credentials"}),
                    content_type="application/json",
                    headers={"WWW-Authenticate": 'Bearer realm="tier2gate admin"'})
            return await handler(request)

        return require_credentials

"""Who may use the admin listener (dashboard, API, metrics, detailed readiness).

On a loopback address only this machine reaches it, which is the whole check (the demo and
`kubectl port-forward` need no account). Bound anywhere else, a request needs
`Authorization: Bearer <admin.token>` (scripts, Prometheus), or the identity header that a
named authenticating proxy sets (`admin.proxy_user_header`; oauth2-proxy sends
`X-Forwarded-User`), else 401. With neither configured, everything is refused: a read side
that leaks incident names to the network is worse than one nobody can open.

Two browser attacks reach even a loopback listener through the operator's own browser, and
both are refused whatever the credentials:
- DNS rebinding: a page whose name the attacker points at 127.0.0.1 reads it "same-origin".
  On loopback the `Host` must be a loopback name (`localhost`, `127.0.0.1`, `[::1]`), else 421.
- Cross-site requests: a page may POST a form or `text/plain` to it without a CORS preflight.
  A request that changes something (not GET/HEAD) is refused with 403 when the browser marks
  it `Sec-Fetch-Site: cross-site`/`same-site` or its `Origin` is not this listener's own
  (https://developer.mozilla.org/docs/Web/HTTP/Headers/Sec-Fetch-Site). Scripts send neither.
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


def _host_name(host_header: str) -> str:
    """The name in a `Host` header, without the port (`[::1]:8081` -> `::1`)."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


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
            if self.open and not is_loopback(_host_name(request.headers.get("Host", ""))):
                raise web.HTTPMisdirectedRequest(
                    text=json.dumps({"error": "the admin listener answers only to a loopback "
                                     "host name (localhost, 127.0.0.1)"}),
                    content_type="application/json")
            if request.method not in ("GET", "HEAD") and _cross_site(request):
                raise web.HTTPForbidden(
                    text=json.dumps({"error": "a cross-site request cannot change anything "
                                     "here"}), content_type="application/json")
            if not self.allows(request):
                raise web.HTTPUnauthorized(
                    text=json.dumps({"error": "the admin listener needs credentials"}),
                    content_type="application/json",
                    headers={"WWW-Authenticate": 'Bearer realm="tier2gate admin"'})
            return await handler(request)

        return require_credentials


def _cross_site(request: web.Request) -> bool:
    """Whether a browser sent this on behalf of another site. Browsers that send
    `Sec-Fetch-Site` say so there (an `Origin` may be `null` under `Referrer-Policy:
    no-referrer`, which this listener sends); for older ones the `Origin` must be ours."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return False  # not a browser: a script, the `drill` command, Prometheus
    return origin == "null" or origin.partition("://")[2] != request.headers.get("Host", "")

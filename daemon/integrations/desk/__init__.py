"""Write-back to the support desks (Zendesk, Jira Service Management) over their REST APIs.

Each vendor module holds one `Client` implementing `integrations.base.Desk` with `requests`
(run through `asyncio.to_thread`, like the tracker clients): no retry or sleep loop of its own,
every failure classified once through `failures`, the job runner owning the timing. A note ends
with its marker line, and `has_note` looks for that marker among the ticket's comments before
a retried job adds the note again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import requests

from daemon.clock import Clock, SystemClock
from daemon.integrations.failures import Permanent, http_failure, transport_failure
from daemon.integrations.shorten import shorten
from daemon.settings import JsmSettings, TlsSettings, ZendeskSettings

if TYPE_CHECKING:
    from daemon.integrations.desk import jsm, zendesk

T = TypeVar("T")
TIMEOUT_S = 10.0  # a healthy desk answers a comment in well under this; beyond it, retry
MAX_PAGES = 20
"""Comment pages read when looking for a marker (100 per page): a ticket with more than
2,000 comments is beyond any escalation; the lookup then says "not found" rather than hang."""


def marker_line(escalation_id: str, step: str) -> str:
    """The last line of every note: tells agents where it came from and lets a retry find it."""
    return f"tier2gate:{escalation_id}:{step}"


def with_marker(text: str, marker: str, limit: int) -> str:
    """The note as sent: its text cut to fit, then the marker on a line of its own."""
    tail = f"\n\n{marker}"
    return shorten(text.rstrip(), limit - len(tail)) + tail


class HttpDesk:
    """What both desk clients share: a session with basic auth, a timeout, the CA, and one
    place that turns `requests` outcomes into `Retry` / `Permanent`."""

    vendor = "desk"

    def __init__(self, url: str, user: str, token: str, *, verify: str | bool = True,
                 timeout_s: float = TIMEOUT_S, clock: Clock | None = None) -> None:
        self.base = url.rstrip("/")
        self._secrets = [token]
        self._timeout_s = timeout_s
        self._clock = clock or SystemClock()  # what a Retry-After HTTP-date is measured from
        self._session = requests.Session()
        self._session.auth = (user, token)
        self._session.verify = verify
        self._session.headers["Accept"] = "application/json"

    def close(self) -> None:
        self._session.close()

    def request(self, method: str, url: str, what: str, **kwargs: object) -> requests.Response:
        """One call; raises the classified failure for anything but a 2xx."""
        what = f"{self.vendor} {what}"
        try:
            response = self._session.request(method, url, timeout=self._timeout_s,
                                             allow_redirects=False, **kwargs)  # type: ignore[arg-type]
        except requests.RequestException as exc:
            if isinstance(exc, requests.ConnectionError | requests.Timeout
                          | requests.exceptions.ChunkedEncodingError):
                raise transport_failure(
                    what, exc, timed_out=isinstance(exc, requests.Timeout)) from None
            raise Permanent(f"{what}: request could not be sent ({type(exc).__name__}); "
                            "check the desk's url") from None
        if not 200 <= response.status_code < 300:
            raise http_failure(what, response.status_code, headers=response.headers,
                               detail=response.text, secrets=self._secrets,
                               now_s=self._clock.now()) from None
        return response

    def json(self, response: requests.Response, what: str) -> dict[str, object]:
        """A 2xx body as a JSON object; anything else is a proxy in the way: retry."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise http_failure(f"{self.vendor} {what}", response.status_code,
                               now_s=self._clock.now()) from None
        return body

    async def run(self, call: Callable[[], T]) -> T:
        return await asyncio.to_thread(call)


def _verify(tls: TlsSettings) -> str | bool:
    return str(tls.ca_file) if tls.ca_file else True


def zendesk_from_settings(settings: ZendeskSettings, tls: TlsSettings,
                          clock: Clock | None = None) -> zendesk.Client | None:
    """The Zendesk client when `zendesk.url`, `email` and `api_token` are set, else None."""
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if not (settings.url and settings.email and token):
        return None
    from daemon.integrations.desk import zendesk

    return zendesk.Client(settings.url, settings.email, token, verify=_verify(tls),
                          clock=clock)


def jsm_from_settings(settings: JsmSettings, tls: TlsSettings,
                      clock: Clock | None = None) -> jsm.Client | None:
    """The Jira Service Management client when `jsm.url`, `email` and `api_token` are set."""
    token = settings.api_token.get_secret_value() if settings.api_token else ""
    if not (settings.url and settings.email and token):
        return None
    from daemon.integrations.desk import jsm

    return jsm.Client(settings.url, settings.email, token, verify=_verify(tls), clock=clock)

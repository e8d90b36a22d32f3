"""incident.io API: the current state of an incident, since webhooks may arrive out of order.

Private incidents arrive by webhook as a bare id, and any delivery may be stale; the ingress
fetches `GET /v2/incidents/{id}` and normalises that instead. Failures are classified by
`integrations.failures` like every other integration; the job runner owns the timing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from daemon.clock import Clock, SystemClock
from daemon.integrations.failures import Retry, http_failure, transport_failure
from daemon.integrations.tls import trusted_context
from daemon.settings import ConfigError, IncidentIoSettings, TlsSettings

API_URL = "https://api.incident.io"


class Client:
    """Read access to one incident.io organisation with an API key."""

    def __init__(self, *, api_token: str, api_url: str = API_URL, ca_file: Path | None = None,
                 timeout_s: float = 10.0, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()  # what a Retry-After HTTP-date is measured from
        self._secrets = (api_token,)
        self._api_url = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_token}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._ssl = trusted_context(ca_file)
        # Opened on first use: aiohttp wants its session created inside the running loop.
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, incident_io: IncidentIoSettings, tls: TlsSettings,
                      clock: Clock | None = None) -> Client:
        if incident_io.api_token is None:
            raise ConfigError("incident_io.api_token is required to fetch incidents")
        return cls(api_token=incident_io.api_token.get_secret_value(),
                   api_url=incident_io.api_url, ca_file=tls.ca_file, clock=clock)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch_incident(self, incident_id: str) -> dict[str, Any]:
        """The incident object (`WebhookIncidentV2` shape) as incident.io has it now."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=self._timeout
            )
        url = f"{self._api_url}/v2/incidents/{quote(incident_id, safe='')}"
        what = f"incident.io fetch incident {incident_id}"
        try:
            async with self._session.get(url, headers=self._headers) as response:
                if response.status != 200:
                    raise http_failure(what, response.status, headers=response.headers,
                                       detail=await response.text(errors="replace"),
                                       secrets=self._secrets, now_s=self._clock.now())
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_failure(what, exc, timed_out=isinstance(exc, TimeoutError)
                                    ) from None
        except ValueError:  # a 200 whose body is not JSON
            raise http_failure(what, 200, now_s=self._clock.now()) from None
        incident = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(incident, dict):
            raise Retry(f"{what}: HTTP 200 without an incident")
        return incident

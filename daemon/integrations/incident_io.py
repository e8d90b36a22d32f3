"""incident.io API: the current state of an incident, since webhooks may arrive out of order.

Private incidents arrive by webhook as a bare id, and any delivery may be stale; the ingress
fetches `GET /v2/incidents/{id}` and normalises that instead. Failures are classified like every
other integration (`Retry` for 5xx/408/429/timeouts/resets, `Permanent` for other 4xx); the job
runner owns the timing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from daemon.integrations.tls import trusted_context
from daemon.settings import ConfigError, IncidentIoSettings, TlsSettings
from daemon.workers.retry import Permanent, Retry

API_URL = "https://api.incident.io"


class Client:
    """Read access to one incident.io organisation with an API key."""

    def __init__(self, *, api_token: str, api_url: str = API_URL, ca_file: Path | None = None,
                 timeout_s: float = 10.0) -> None:
        self._api_url = api_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_token}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._ssl = trusted_context(ca_file)
        # Opened on first use: aiohttp wants its session created inside the running loop.
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, incident_io: IncidentIoSettings, tls: TlsSettings) -> Client:
        if incident_io.api_token is None:
            raise ConfigError("incident_io.api_token is required to fetch incidents")
        return cls(api_token=incident_io.api_token.get_secret_value(),
                   api_url=incident_io.api_url, ca_file=tls.ca_file)

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
        what = f"fetch incident.io incident {incident_id}"
        try:
            async with self._session.get(url, headers=self._headers) as response:
                if response.status != 200:
                    raise _classify(what, response.status, response.headers)
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Only the class name: the texts are safe today, but they are not ours to promise.
            raise Retry(f"{what}: incident.io did not answer ({type(exc).__name__})") from exc
        except ValueError as exc:  # a 200 whose body is not JSON
            raise Retry(f"{what}: incident.io answered 200 with a body we cannot read") from exc
        incident = body.get("incident") if isinstance(body, dict) else None
        if not isinstance(incident, dict):
            raise Retry(f"{what}: incident.io answered 200 without an incident")
        return incident


def _classify(what: str, status: int, headers: Mapping[str, str]) -> Retry | Permanent:
    if status == 429:
        return Retry(f"{what}: incident.io rate limit (429)", after_s=_retry_after_s(headers))
    if status == 408 or status >= 500:
        return Retry(f"{what}: incident.io answered {status}")
    return Permanent(f"{what}: incident.io answered {status}")


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    try:
        seconds = float(headers.get("Retry-After", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None

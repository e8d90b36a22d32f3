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
from daemon.integrations.base import CustomFieldInfo
from daemon.integrations.failures import Retry, http_failure, transport_failure
from daemon.integrations.tls import trusted_context
from daemon.settings import ConfigError, IncidentIoSettings, TlsSettings

API_URL = "https://api.incident.io"
SELECT_TYPES = frozenset({"single_select", "multi_select"})
OPTIONS_PAGE_SIZE = 250  # the endpoint's maximum page size
MAX_OPTION_PAGES = 20  # 5,000 options: far beyond a Yes/No criterion; bounds a looping cursor


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
        what = f"incident.io fetch incident {incident_id}"
        body = await self._get(f"/v2/incidents/{quote(incident_id, safe='')}", {}, what)
        incident = body.get("incident")
        if not isinstance(incident, dict):
            raise Retry(f"{what}: HTTP 200 without an incident")
        return incident

    async def custom_fields(self) -> tuple[CustomFieldInfo, ...]:
        """`GET /v2/custom_fields` (`{"custom_fields": [{id, name, field_type, ...}]}`), and for
        each select field its options from `GET /v1/custom_field_options?custom_field_id=`
        (`{"custom_field_options": [{value, ...}], "pagination_meta": {after}}`), as in the
        public OpenAPI schema (CustomFieldsV2List, CustomFieldOptionsV1List)."""
        what = "incident.io list custom fields"
        body = await self._get("/v2/custom_fields", {}, what)
        fields: list[CustomFieldInfo] = []
        for field in _dicts(body.get("custom_fields")):
            field_type = str(field.get("field_type") or "")
            options: tuple[str, ...] = ()
            if field_type in SELECT_TYPES and not field.get("catalog_type_id"):
                options = await self._options(str(field.get("id") or ""))
            fields.append(CustomFieldInfo(str(field.get("name") or ""), field_type, options))
        return tuple(fields)

    async def _options(self, field_id: str) -> tuple[str, ...]:
        values: list[str] = []
        after = ""
        for _page in range(MAX_OPTION_PAGES):
            params = {"custom_field_id": field_id, "page_size": str(OPTIONS_PAGE_SIZE)}
            if after:
                params["after"] = after
            body = await self._get("/v1/custom_field_options", params,
                                   "incident.io list custom field options")
            values += [str(option.get("value") or "")
                       for option in _dicts(body.get("custom_field_options"))]
            meta = body.get("pagination_meta")
            after = str(meta.get("after") or "") if isinstance(meta, dict) else ""
            if not after:
                break
        return tuple(values)

    async def _get(self, path: str, params: dict[str, str], what: str) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=self._timeout
            )
        try:
            async with self._session.get(self._api_url + path, params=params,
                                         headers=self._headers) as response:
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
        if not isinstance(body, dict):
            raise Retry(f"{what}: HTTP 200 without a JSON object")
        return body


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []

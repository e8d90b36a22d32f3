"""Reading vendor JSON defensively, the same way for every vendor.

Payloads vary with the vendor's age and plan: a field that is absent or of another type reads
as empty, never as a crash; what we cannot do without (an id, a timestamp) is a `PayloadError`,
which the endpoint turns into a 400 that stores nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class PayloadError(ValueError):
    """Not a webhook body we can read: the endpoint answers 400 and stores nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def timestamp(value: object, name: str) -> datetime | None:
    """ISO 8601 -> aware datetime; None when absent. Both vendors send UTC, so a zone-less
    value is read as UTC rather than rejected."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{name} is not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(f"{name} is not an ISO 8601 timestamp") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def text(value: object) -> str:
    return value if isinstance(value, str) else ""

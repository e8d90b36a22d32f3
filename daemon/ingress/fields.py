"""Reading vendor JSON defensively, the same way for every vendor.

Payloads vary with the vendor's age and plan: a field that is absent or of another type reads
as empty, never as a crash; what we cannot do without (an id, a timestamp) is a `PayloadError`,
which the endpoint turns into a 400 that stores nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NoReturn

MAX_JSON_DEPTH = 64
"""Nesting that no vendor payload comes near (PagerDuty and incident.io stay under 10 levels).
Python's parser itself stops near 1,000 with a RecursionError; anything that deep would make
every later recursive walk of the payload (our parsers, `json.dumps`) a crash waiting to happen."""


class PayloadError(ValueError):
    """Not a webhook body we can read: the endpoint answers 400 and stores nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_json(body: bytes) -> Any:
    """A webhook body as JSON, or `PayloadError` for anything that is not interoperable JSON
    text (RFC 8259 / I-JSON, RFC 7493): the body must be UTF-8 (Python would otherwise guess
    UTF-16 from leading NULs, and accepts encoded surrogates); no `NaN`/`Infinity`; integers
    within Python's digit limit; no lone surrogate escapes (they cannot be stored as text); no
    deeper than `MAX_JSON_DEPTH`. A signed body can still be hostile: a leaked secret, a
    vendor bug, a proxy that mangles bytes. Each of these was a 500 before.
    """
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_not_json)
    except RecursionError:
        raise PayloadError(f"body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # UnicodeDecodeError, JSONDecodeError, the integer digit limit
        raise PayloadError(f"body is not valid JSON ({type(exc).__name__})") from None
    _check_tree(value)
    return value


def _not_json(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not JSON")


def _check_tree(value: Any) -> None:
    """Depth and text of every node, iteratively: the check must not recurse itself."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, str):
            _check_text(node)
        elif isinstance(node, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise PayloadError(f"body nests deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(node, dict):
                for key in node:
                    _check_text(key)
            children: Iterable[Any] = node.values() if isinstance(node, dict) else node
            pending.extend((child, depth + 1) for child in children)


def _check_text(text: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError("body has a string that is not Unicode text (a lone surrogate)"
                           ) from None


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

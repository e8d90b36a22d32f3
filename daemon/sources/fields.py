"""Reading inbound vendor JSON defensively, the same way for every source.

Payloads vary with the vendor's age and plan: a field that is absent or of another type reads
as empty, never as a crash; what we cannot do without (an id, a timestamp) is a `PayloadError`,
which the endpoint turns into a 400 that stores nothing.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import msgspec

MAX_JSON_DEPTH = 64
"""Nesting that no vendor payload comes near (PagerDuty and incident.io stay under 10 levels).
The decoder itself stops near 1,000 with a RecursionError; anything that deep would make
every later recursive walk of the payload (our parsers, `json.dumps`) a crash waiting to happen."""


class PayloadError(ValueError):
    """Not a body we can read, from any source (vendor webhooks and Slack requests alike):
    the endpoint answers 400 and stores nothing. `reason` goes into that answer, so it never
    quotes the body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_json(body: bytes) -> Any:
    """A webhook body as JSON, or `PayloadError` for anything that is not interoperable JSON
    text (RFC 8259 / I-JSON, RFC 7493): the body must be UTF-8 (no byte order mark, no UTF-16,
    no encoded surrogates); no `NaN`/`Infinity`, and no number that only reads as one
    (`1e400`); integers within msgspec's range (it keeps big integers exact and refuses those of
    thousands of digits); no lone surrogate escapes and no NUL (they cannot be stored as
    text); no deeper than `MAX_JSON_DEPTH`. A signed body can still be hostile: a leaked
    secret, a vendor bug, a proxy that mangles bytes. Each of these was a 500 before.

    msgspec checks all but the depth while it decodes, in C (a 4 KB webhook: ~7 µs, against
    ~45 µs for the standard library plus a walk over every string); the depth is checked
    only when the body has enough brackets to nest that deep at all.
    """
    # Each level of nesting opens with a bracket; brackets inside strings only make this
    # conservative. Vendor payloads have a few dozen containers, most webhooks skip the scan.
    # Checked before decoding: a decoder that meets the interpreter's recursion limit leaves
    # any finalizer that runs at that moment failing as well.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _nests_too_deep(body):
        raise PayloadError(f"body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = _DECODER.decode(body)
    except msgspec.DecodeError as exc:  # malformed, not UTF-8, lone surrogate, out of range
        raise PayloadError(f"body is not valid JSON ({_why(exc)})") from None
    # A NUL can only come escaped (JSON refuses raw control characters), so a body without
    # the escape is not walked; one with it may still only spell it out after a backslash.
    if _spells_nul(body) and _holds_nul(value):
        raise PayloadError("body holds a NUL character, which no text column stores")
    return value


def _classes() -> bytes:
    """A translation table to the byte classes `skippable` looks for: digits as `0`, `e`/`E`
    as `e`, `[`/`{` as `{`, anything else as `x` (signs are deleted, see there)."""
    table = bytearray(b"x" * 256)
    for classes, members in ((b"0", b"0123456789"), (b"e", b"eE"), (b"{", b"[{")):
        for member in members:
            table[member] = classes[0]
    return bytes(table)


_CLASSES = _classes()
_SIGNS = b"+-"
_LONG_DIGITS = b"0" * 100


def skippable(body: bytes) -> bool:
    """Whether a typed msgspec decoder, which reads only the fields it is given and skips the
    rest, reaches `decode_json`'s verdict on this body. Skipping still checks the JSON grammar,
    every escape (a lone surrogate included) and every control character, but not:

    - UTF-8: so the body must be ASCII;
    - a NUL: so it must not spell `\\u0000`;
    - the depth: so it must have at most `MAX_JSON_DEPTH` brackets;
    - numbers out of range: a float beyond a double's range needs an exponent of three or
      more digits or a hundred-odd digits before its point, and an integer msgspec refuses
      needs thousands of digits, so neither may appear (anywhere, signs ignored: inside a
      string this only sends the body the careful way).

    One pass maps the body to byte classes; one count and two searches look at it. Reading a
    webhook's few checked fields this way instead of building every object of the body cut
    the listener's CPU per incident.io delivery by a fifth (bench/README)."""
    if not body.isascii() or _spells_nul(body):
        return False
    classes = body.translate(_CLASSES, _SIGNS)
    return (classes.count(b"{") <= MAX_JSON_DEPTH and b"e000" not in classes
            and _LONG_DIGITS not in classes)


def _spells_nul(body: bytes) -> bool:
    """Whether the body spells the escape of a NUL (the backslash alone is found at memchr
    speed, and most bodies have none)."""
    return b"\\" in body and b"\\u0000" in body


def _holds_nul(value: Any) -> bool:
    """Whether any string of a decoded body, a key included, holds U+0000 (PostgreSQL's text
    refuses it, so the step storing it would fail on every retry)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


_DECODER = msgspec.json.Decoder()


def decode_stored(body: bytes) -> Any:
    """A stored delivery's body, for its job: it passed `decode_json` at the door, or an
    older door that used the standard library (which reads `1e400` as infinity), so that is
    the fallback."""
    try:
        return _DECODER.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return json.loads(body)


def _why(exc: msgspec.DecodeError) -> str:
    """The decoder's reason without positions or values (it goes into a 400 body)."""
    if isinstance(exc, msgspec.ValidationError):
        return "number out of range"
    return "malformed or not UTF-8"


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def _nests_too_deep(body: bytes) -> bool:
    """Whether the brackets outside strings open deeper than `MAX_JSON_DEPTH`, scanned without
    recursion (malformed text is left to the decoder to refuse)."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b"", body)):
        depth += 1 if bracket.group() in (b"[", b"{") else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


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

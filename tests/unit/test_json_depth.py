"""Nesting is refused before decoding, so no decoder ever meets the interpreter's recursion
limit (where a finalizer running at that moment fails too): every source shares the limit."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from daemon.sources.fields import MAX_JSON_DEPTH, PayloadError, decode_json
from daemon.sources.slack import parse_interaction


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_the_limit_is_exact_and_brackets_in_strings_do_not_count() -> None:
    assert decode_json(nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(PayloadError, match="nests deeper"):
        decode_json(nested(MAX_JSON_DEPTH + 1))
    text = b'{"a": "' + b"[{" * 5000 + b'\\" ]"}'
    assert decode_json(text) == {"a": "[{" * 5000 + '" ]'}


def test_a_slack_payload_nested_a_hundred_thousand_deep_is_refused_without_recursing() -> None:
    body = b"payload=" + quote("[" * 100_000).encode()
    with pytest.raises(PayloadError, match="nests deeper"):
        parse_interaction(body)

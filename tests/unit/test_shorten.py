"""The one shortening helper: an ellipsis, never a split character, never a broken escape."""

from __future__ import annotations

import pytest

from daemon.integrations.shorten import ELLIPSIS, shorten, shorten_mrkdwn


@pytest.mark.parametrize(("text", "limit", "shortened"), [
    ("short", 10, "short"),
    ("exactly10!", 10, "exactly10!"),
    ("abcdefghijk", 10, "abcdefghi" + ELLIPSIS),
    ("cafe\u0301 au lait", 5, "caf" + ELLIPSIS),  # é as e + combining accent stays whole
    ("ab\U0001F469\u200d\U0001F4BBcd", 5, "ab" + ELLIPSIS),  # a ZWJ emoji is not split
    ("ab\u2764\ufe0fcd", 4, "ab" + ELLIPSIS),  # nor is an emoji and its variation selector
    ("\U0001F525" * 5, 3, "\U0001F525\U0001F525" + ELLIPSIS),  # astral characters count once
])
def test_shorten(text: str, limit: int, shortened: str) -> None:
    assert shorten(text, limit) == shortened
    assert len(shortened) <= limit


@pytest.mark.parametrize(("text", "limit", "shortened"), [
    ("Tom &amp; Jerry", 8, "Tom " + ELLIPSIS),  # the cut fell inside &amp;
    ("Tom &amp; Jerry", 10, "Tom &amp;" + ELLIPSIS),
    ("see <https://x.example/a|runbook> now", 20, "see " + ELLIPSIS),
    ("ask <@U123> now", 8, "ask " + ELLIPSIS),
    ("a &lt;b&gt; c", 13, "a &lt;b&gt; c"),
])
def test_shorten_mrkdwn_never_ends_inside_an_escape_or_a_link(text: str, limit: int,
                                                              shortened: str) -> None:
    assert shorten_mrkdwn(text, limit) == shortened
    assert len(shortened) <= limit


def test_a_45000_character_name_fits_slacks_header() -> None:
    assert len(shorten("x" * 45_000, 150)) == 150

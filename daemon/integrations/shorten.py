"""Cutting a value down to a vendor's documented limit, the same way at every adapter boundary.

The cut ends in an ellipsis and never splits what a reader sees as one character: a base
letter stays with its combining marks, an emoji with its zero-width joiners and variation
selectors. Limits count Unicode code points, as Python's `len` does; each adapter names its
limits and their sources beside the constants it passes here.
"""

from __future__ import annotations

import re
import unicodedata

ELLIPSIS = "…"
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}  # ZWJ and variation selectors bind to a neighbour
_OPEN_ENTITY = re.compile(r"&[a-z]{0,4}$")  # a cut inside `&amp;`, `&lt;`, `&gt;`
_OPEN_LINK = re.compile(r"<[^<>]*$")  # a cut inside `<url|label>` or `<@U123>`


def shorten(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else as much as fits before an ellipsis."""
    if len(text) <= limit:
        return text
    return text[:_cut(text, limit - len(ELLIPSIS))] + ELLIPSIS


def shorten_mrkdwn(text: str, limit: int) -> str:
    """`shorten` for Slack mrkdwn: never ends inside an escape (`&amp;`) or a `<…>` link or
    mention, which Slack would show as raw markup or refuse."""
    if len(text) <= limit:
        return text
    head = text[:_cut(text, limit - len(ELLIPSIS))]
    for unfinished in (_OPEN_ENTITY, _OPEN_LINK):
        match = unfinished.search(head)
        if match:
            head = head[:match.start()]
    return head + ELLIPSIS


def _cut(text: str, at: int) -> int:
    """The last position at or before `at` that does not split a user-perceived character."""
    at = max(0, at)
    while 0 < at < len(text) and (unicodedata.combining(text[at]) or text[at] in _JOINERS
                                  or text[at - 1] in _JOINERS
                                  or _is_low_surrogate(text[at])):
        at -= 1
    return at


def _is_low_surrogate(char: str) -> bool:
    # Only in text decoded with `surrogatepass`; a lone half would make the JSON invalid.
    return "\udc00" <= char <= "\udfff"

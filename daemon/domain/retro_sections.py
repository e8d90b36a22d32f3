"""Which follow-through sections of a retro issue people filled in.

The retro template (`daemon/templates/retro.md.j2`) ends with one heading per section the
program asks for, each holding `PLACEHOLDER` until someone writes there. A retro is *complete*
when its issue is closed and every section holds something else. Pure: the body is text read
from the tracker; nothing here calls one.
"""

from __future__ import annotations

import re

SECTIONS = ("Root cause", "Corrective actions", "Documentation or error message to improve")
PLACEHOLDER = "_To be filled in by the assignee._"
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _heading(line: str) -> str | None:
    """The heading's text, folded; None for any other line."""
    match = _HEADING.match(line)
    return match[2].strip().casefold() if match else None


def filled_sections(body: str) -> dict[str, bool]:
    """Section name -> whether its text holds anything but the placeholder, comments and
    blank lines. A section whose heading is gone counts as not filled."""
    wanted = {name.casefold(): name for name in SECTIONS}
    found = dict.fromkeys(SECTIONS, False)
    current: str | None = None
    for line in _COMMENT.sub("", body).splitlines():
        title = _heading(line)
        if title is not None:
            current = wanted.get(title)
            continue
        text = line.strip()
        if current is not None and text and text != PLACEHOLDER:
            found[current] = True
    return found


def missing_sections(body: str) -> tuple[str, ...]:
    """The sections still to fill, in the template's order."""
    return tuple(name for name, held in filled_sections(body).items() if not held)

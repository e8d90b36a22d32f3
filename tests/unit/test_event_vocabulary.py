"""The timeline's vocabulary is spelled once, in `daemon/domain/events.py`.

The guard parses every module under `daemon/` and flags a string constant equal to an
`EventKind` value (outside `events.py`) when it stands where an event name stands:

1. compared (`==`, `!=`, `in`, `not in`) with something named `event` (a name, an attribute
   `x.event`, a subscript `x["event"]`), directly or inside a tuple, list or set literal;
2. a `case` value of a `match` on something named `event`;
3. assigned to, or returned into, a name `event` (`event = "paged"`, also through `x if c else y`);
4. the event argument of `Record`, `NewEvent` or `on_noted` (not a once key that happens to
   equal an event name, as `once_key="paged"` does);
5. in SQL text next to `event`: `event = 'x'` or `event IN ('x', ...)`;
6. one of two or more strings of a collection literal whose strings are all event names (a
   hand-written set of events, such as the ones a report counts), or of a dict literal whose
   string keys all are (a table of labels by event).

`x.event.value` and `str(x.event)` stand where `x.event` does.

Other strings that happen to equal an event name ("resolved" as a status, "paged" in prose) are
not event look-ups and pass.
"""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

from daemon.domain.events import (
    FACTS,
    EETakenOver,
    EventKind,
    IncidentUpdate,
    TeamChanged,
    details_of,
)

DAEMON = Path(__file__).resolve().parents[2] / "daemon"
DEFINITIONS = DAEMON / "domain" / "events.py"
NAMES = frozenset(kind.value for kind in EventKind)
PRODUCERS = {"Record": 0, "NewEvent": 1, "on_noted": 1}  # where the event is passed
_SQL = re.compile(r"\bevent\s*(?:=|IN\s*\()\s*'([^']*)'(?:\s*,\s*'([^']*)')*", re.IGNORECASE)


def _named_event(node: ast.expr) -> bool:
    match node:
        case ast.Attribute(value=inner, attr="value") | ast.Call(
                func=ast.Name(id="str"), args=[inner]) if _named_event(inner):
            return True  # the member's string, compared as a string
        case ast.Name(id=name) | ast.Attribute(attr=name):
            return name == "event"
        case ast.Subscript(slice=ast.Constant(value="event")):
            return True
    return False


def _names_in(node: ast.expr) -> list[ast.Constant]:
    """The event-name constants `node` is, or holds as a collection literal."""
    if isinstance(node, ast.Constant) and node.value in NAMES:
        return [node]
    if isinstance(node, ast.IfExp):
        return _names_in(node.body) + _names_in(node.orelse)
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [c for elt in node.elts for c in _names_in(elt)]
    return []


def _callee(node: ast.Call) -> str:
    match node.func:
        case ast.Name(id=name) | ast.Attribute(attr=name):
            return name
    return ""


def _sql_names(text: str) -> list[str]:
    found: list[str] = []
    for match in _SQL.finditer(text):
        found += re.findall(r"'([^']*)'", match.group(0))
    return [name for name in found if name in NAMES]


def violations(source: str) -> list[tuple[int, str]]:
    """(line, name) of every event name spelled in an event position of `source`."""
    found: list[tuple[int, str]] = []

    def flag(constants: list[ast.Constant]) -> None:
        found.extend((c.lineno, str(c.value)) for c in constants)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_named_event(side) for side in sides):
                for side in sides:
                    flag(_names_in(side))
        elif isinstance(node, ast.Match) and _named_event(node.subject):
            for case in node.cases:
                for pattern in ast.walk(case.pattern):
                    if isinstance(pattern, ast.MatchValue):
                        flag(_names_in(pattern.value))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t for target in targets
                     for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
            if any(_named_event(t) for t in names):
                flag([c for c in ast.walk(node.value)
                      if isinstance(c, ast.Constant) and c.value in NAMES])
        elif isinstance(node, ast.Call) and _callee(node) in PRODUCERS:
            position = PRODUCERS[_callee(node)]
            args = [*node.args[position:position + 1],
                    *(k.value for k in node.keywords if k.arg == "event")]
            for arg in args:
                flag(_names_in(arg))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.extend((node.lineno, name) for name in _sql_names(node.value))
        if isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict):
            elements = node.keys if isinstance(node, ast.Dict) else node.elts
            strings = [e for e in elements
                       if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if len(strings) >= 2 and all(s.value in NAMES for s in strings):
                flag(strings)
    return sorted(set(found))


def test_no_event_name_is_spelled_outside_the_vocabulary() -> None:
    spelled = [f"{path.relative_to(DAEMON.parent)}:{line}: {name!r}"
               for path in sorted(DAEMON.rglob("*.py")) if path != DEFINITIONS
               for line, name in violations(path.read_text())]
    assert spelled == [], "use EventKind members:\n" + "\n".join(spelled)


def test_the_guard_catches_each_position() -> None:
    snippet = '''
if entry.event == "paged": pass
if entry.event in ("approved", "declined"): pass
match entry.event:
    case "classified": pass
event = "would_have_paged" if shadow else "retro_opened"
Record("resolved", actor, once_key="paged")
on_noted(gate, "rfh_issue_opened", {})
NewEvent(esc_id, event="acknowledged")
SQL = "SELECT 1 FROM timeline WHERE event IN ('acknowledged', 'page_escalated')"
WATCHED = frozenset({"reopened", "updated"})
if row["event"] != "received": pass
'''
    assert [name for _line, name in violations(snippet)] == [
        "paged", "approved", "declined", "classified", "retro_opened", "would_have_paged",
        "resolved", "rfh_issue_opened", "acknowledged", "acknowledged", "page_escalated",
        "reopened", "updated", "received"]


def test_the_guard_passes_words_that_are_not_event_names_here() -> None:
    snippet = '''
if status == "resolved": pass
text = "Tier 2 was paged"
STATES = ("resolved", "open")
if entry.event == EventKind.PAGED: pass
'''
    assert violations(snippet) == []


def test_every_kind_has_one_fact_that_stores_and_reads_back() -> None:
    assert set(FACTS) == set(EventKind)
    for kind, cls in FACTS.items():
        assert cls.kind is kind
        blank = cls()
        assert details_of(kind, blank.stored()) == blank, kind


def test_keys_python_keeps_for_itself_are_stored_as_written() -> None:
    assert TeamChanged(from_team="a", to="b").stored() == {"from": "a", "to": "b"}
    assert IncidentUpdate(update="note", event_id="E1").stored() == {
        "kind": "note", "event_id": "E1"}
    assert EETakenOver.read({"from": "U1", "name": "Ann"}).from_owner == "U1"
    assert all(f.name != "kind" for cls in FACTS.values() for f in fields(cls))


STORED: tuple[tuple[EventKind, dict[str, Any]], ...] = (
    (EventKind.CLASSIFIED, {
        "outcome": "rfh", "rule": None, "reason": "no criterion", "matched": {},
        "criteria": [], "severity": "S3", "weekend": False, "off_hours": True,
        "previous": "received", "team": "default", "due": "2026-11-30T09:00:00+00:00"}),
    (EventKind.APPROVED, {"waited_s": 12.5, "self_approved": True}),
    (EventKind.APPROVED, {}),
    (EventKind.APPROVAL_REMINDED, {"n": 1, "posted": False}),
    (EventKind.ACKNOWLEDGED, {"event_id": "E1", "round": 2, "incident_id": "P1",
                              "responders": [{"id": "PA", "name": "Ann", "time_zone": ""}]}),
    (EventKind.POLICY_CHANGED, {"from": "a", "to": "b", "previous": None, "outcome": "ignore",
                                "rule": "test", "reason": "r"}),
    (EventKind.UPDATED, {"title": "new", "severity": "S1"}),
    (EventKind.DEAD_LETTERED, {"job_id": 7, "kind": "page", "attempts": 5, "error": "x"}),
    (EventKind.RETRO_CLOSED, {"url": "u", "complete": True, "missing": [],
                              "completed_after_close": True}),
)


def test_stored_details_read_back_and_store_the_same() -> None:
    """Entries as earlier versions wrote them: the fact stores exactly those keys and values
    again, so a database written before `events.py` reads and writes on unchanged."""
    for kind, details in STORED:
        assert details_of(kind, details).stored() == details, kind


def test_the_guard_catches_what_a_report_or_a_view_would_write_too() -> None:
    # A table of labels keyed by event name, an event's `.value` or its `str()` compared with a
    # name: each spells the vocabulary again, as surely as `entry.event == "paged"` does.
    snippet = '''
LABELS = {"approved": "Approved", "declined": "Declined"}
if entry.event.value == "paged": pass
if str(row.event) in ("acknowledged", "x"): pass
'''
    assert [name for _line, name in violations(snippet)] == [
        "approved", "declined", "paged", "acknowledged"]

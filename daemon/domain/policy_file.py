"""Parsing the policy's text and explaining its mistakes by line. Pure: the file itself is read
by `daemon.policy_source`.

The policy is edited by support managers, not developers, so a bad file must fail at start-up
(and in `tier2gate check-config`) with the file, the rule's name and the YAML line, never with a
pydantic dump. The model knows *what* is wrong (an error location like
`rules.2.when.sevrity`); the YAML node tree knows *where* that is in the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from daemon.domain.policy import Conditions, Loc, Misplaced, Policy
from daemon.yamlfile import bad_timestamp


@dataclass(frozen=True)
class Problem:
    """One mistake in a policy file, located as precisely as the file allows."""

    path: str
    message: str
    line: int | None = None
    rule: str | None = None
    team: str | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        team = f" team {self.team!r}:" if self.team else ""
        rule = f" rule {self.rule!r}:" if self.rule else ""
        return f"{where}:{team}{rule} {self.path}: {self.message}"


class PolicyError(Exception):
    """The policy file cannot be used; the message lists every problem, one per line."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(problem.render(source) for problem in self.problems))


def _dotted(loc: Loc) -> str:
    """`rules.2.when.severity` style path, the way people read it in the file."""
    return ".".join(str(part) for part in loc) or "(document)"


def _read_document(text: str, source: str) -> tuple[dict[str, Any], yaml.Node]:
    """Parse YAML once into plain data and the node tree that remembers line numbers."""
    loader = yaml.SafeLoader(text)
    node: yaml.Node | None = None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
        # An alias inside the value its anchor marks builds a value that contains itself; the
        # walk over the node tree is what never ends, so it runs under the same handler.
        duplicates = [
            Problem(_dotted(loc), f"key {loc[-1]!r} appears twice", line, _rule_name(data, loc))
            for loc, line in _duplicate_keys(node, ())
        ]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        problem = Problem("(document)", f"not valid YAML: {exc.problem}", line)
        raise PolicyError(source, [problem]) from exc
    except RecursionError:
        raise PolicyError(source, [Problem("(document)", "an alias (*name) inside the value its "
                                           "anchor (&name) marks: the value would contain itself")]
                          ) from None
    except (ValueError, OverflowError) as exc:
        # PyYAML reads 2026-02-30 as a date and fails outside its own error type.
        found = bad_timestamp(node)
        if found is None:
            raise PolicyError(source, [Problem("(document)", f"not valid YAML: {exc}")]) from None
        line, path, value = found
        raise PolicyError(source, [Problem(
            _dotted(path) or "(document)", f"{value!r} is not a date ({exc}); write a real date "
            "as YYYY-MM-DD, or quote text", line, _rule_name(None, path))]) from None
    finally:
        loader.dispose()
    if duplicates:
        raise PolicyError(source, duplicates)
    if node is None or not isinstance(data, dict):  # an empty file has no node
        raise PolicyError(source, [Problem("(document)", "expected a mapping of sections", 1)])
    return data, node


def parse_policy(text: str, source_name: str = "<policy>") -> Policy:
    """Validate policy YAML; a `PolicyError` names `source_name`, the rule and the line."""
    data, node = _read_document(text, source_name)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source_name, _problems_from(exc, data, node)) from None


def dump_policy(policy: Policy) -> dict[str, Any]:
    """The effective policy as plain data (defaults filled in) for `tier2gate check-config`."""
    return policy.model_dump(mode="json", exclude_none=True)


def _problems_from(exc: ValidationError, data: Any, node: yaml.Node) -> list[Problem]:
    """Translate pydantic errors into problems with a line and, inside a rule, its name."""
    problems: list[Problem] = []
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, Misplaced):
            problems.extend(_problem(loc + inner, msg, data, node) for inner, msg in cause.problems)
        elif error["type"] == "extra_forbidden":
            parent, key = loc[:-1], loc[-1]
            if parent[-1:] == ("when",):
                known = ", ".join(Conditions.model_fields)
                message = f"unknown condition {key!r}; known: {known}"
            else:
                message = f"unknown key {key!r}"
            problems.append(_problem(loc, message, data, node))
        else:
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] in {"enum", "literal_error"}:
                message = f"{error['input']!r} is not allowed: {message}"
            problems.append(_problem(loc, message, data, node))
    return problems


def _problem(loc: Loc, message: str, data: Any, node: yaml.Node) -> Problem:
    shown = loc[:-1] if loc[-1:] == ("[key]",) else loc
    team = _item_name(data, loc, "teams")
    if team is not None:  # a team's own rule: `teams.N.rules.M…`
        teams = data.get("teams") if isinstance(data, dict) else None
        inner = teams[loc[1]] if isinstance(teams, list) and isinstance(loc[1], int) else None
        return Problem(_dotted(shown), message, _line(node, loc),
                       _item_name(inner, loc[2:], "rules"), team)
    return Problem(_dotted(shown), message, _line(node, loc), _rule_name(data, loc))


def _rule_name(data: Any, loc: Loc) -> str | None:
    """The rule a location belongs to, by name when it has one, so people can find it."""
    return _item_name(data, loc, "rules")


def _item_name(data: Any, loc: Loc, section: str) -> str | None:
    """The name of the item of `section` (a list of named mappings) that `loc` is inside."""
    if len(loc) < 2 or loc[0] != section or not isinstance(loc[1], int):
        return None
    items = data.get(section) if isinstance(data, dict) else None
    if not isinstance(items, list) or not 0 <= loc[1] < len(items):
        return None
    item = items[loc[1]]
    name = item.get("name") if isinstance(item, dict) else None
    return name if isinstance(name, str) and name else f"#{loc[1] + 1}"


def _line(node: yaml.Node, loc: Loc) -> int:
    """1-based line of the deepest node on `loc`; a key's own line when the key is the culprit."""
    current, key_node = node, None
    for part in loc:
        if part == "[key]" and key_node is not None:
            return key_node.start_mark.line + 1
        child = _child(current, part)
        if child is None:
            break
        key_node, current = child
    target = key_node if key_node is not None and not isinstance(current, yaml.ScalarNode) else None
    return (target or current).start_mark.line + 1


def _child(node: yaml.Node, part: int | str) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return None, node.value[part]
    return None


def _duplicate_keys(node: yaml.Node | None, loc: Loc) -> Iterable[tuple[Loc, int]]:
    """PyYAML keeps the last of two equal keys silently; in a policy that hides an edit."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        # Every key is a scalar: constructing the document refused the others (unhashable).
        for key, value in node.value:
            if key.value in seen:
                yield (*loc, key.value), key.start_mark.line + 1
            seen.add(key.value)
            yield from _duplicate_keys(value, (*loc, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, index))

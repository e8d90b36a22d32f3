"""YAML loading that remembers where every key was, so errors can name the line.

An operator who typo'd a key at 3 a.m. needs "line 12: http.prot", not a pydantic dump.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from daemon.domain.yaml_dates import Loc, bad_timestamp

# PyYAML's wording for the mistakes people make by hand, and what to do about each. Matched
# by prefix on the parser's `problem`; the parser's own words stay in the message too.
_HINTS = (
    ("found character '\\t'", "a tab character: YAML indents with spaces only"),
    ("mapping values are not allowed", "a second `key:` on one line, or a value containing "
     "': ' that needs quotes, or a key indented deeper than the one above it"),
    ("could not find expected ':'", "a line that is not `key: value`: add the colon, or "
     "quote the value if it goes on from the line above"),
    ("expected <block end>", "the indentation does not line up: keys of one section need "
     "the same number of spaces"),
    ("found unexpected end of stream", "a quote or bracket that is never closed"),
    ("found unknown escape character", "a backslash inside double quotes: use single quotes"),
    ("found undefined alias", "a value starting with `*`: put it in quotes"),
    ("found character '@'", "a value starting with `@` or a backquote: put it in quotes"),
    ("found character '`'", "a value starting with `@` or a backquote: put it in quotes"),
    ("expected ',' or ']'", "a [list] that is never closed, or a missing comma"),
    ("expected ',' or '}'", "a {mapping} that is never closed, or a missing comma"),
)


def _hint(problem: str) -> str:
    for start, advice in _HINTS:
        if problem.startswith(start):
            return f" ({advice})"
    return ""


class YamlError(ValueError):
    """The file is not YAML we can read; the message names the file and line."""


class YamlDoc:
    """Parsed YAML plus the line (1-based) of each key or list item."""

    def __init__(self, text: str, name: str) -> None:
        self.name = name
        node: yaml.Node | None = None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data: Any = yaml.safe_load(text)
            self._lines: dict[Loc, int] = {}
            if node is not None:
                self._walk(node, ())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or "not valid YAML"
            hint = _hint(problem)
            raise YamlError(f"{name}{where}: {problem}{hint}") from None
        except RecursionError:
            raise YamlError(f"{name}: an alias (*name) inside the value its anchor (&name) "
                            "marks: the value would contain itself") from None
        except (ValueError, OverflowError) as exc:
            # PyYAML reads 2026-02-30 as a date and fails outside its own error type.
            found = bad_timestamp(node)
            if found is None:
                raise YamlError(f"{name}: {exc}") from None
            line, path, value = found
            raise YamlError(f"{name}:{line}: {dotted(path) or '(document)'}: {value!r} is not a "
                            f"date ({exc}); write a real date as YYYY-MM-DD, or quote text") \
                from None

    @classmethod
    def from_path(cls, path: Path) -> YamlDoc:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise YamlError(f"{path}: cannot read ({exc.strerror or exc})") from None
        return cls(text, str(path))

    def _walk(self, node: yaml.Node, path: Loc) -> None:
        self._lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                self._lines.setdefault((*path, key), key_node.start_mark.line + 1)
                self._walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Line of the deepest known prefix of `loc` (pydantic locations can go below YAML)."""
        for end in range(len(loc), -1, -1):
            line = self._lines.get(tuple(loc[:end]))
            if line is not None and (end > 0 or not loc):
                return line
        return None

    def has(self, loc: Sequence[str | int]) -> bool:
        return tuple(loc) in self._lines


def dotted(loc: Sequence[str | int]) -> str:
    """`('rules', 2, 'when')` -> `rules[2].when`: how people write paths into YAML."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out

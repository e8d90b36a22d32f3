"""YAML dates that are no dates: PyYAML reads `2026-02-30` as a timestamp and fails while
building the document; found on the node tree first, the mistake gets its line and key.
Pure: it walks nodes already parsed, whichever file they came from."""

from __future__ import annotations

import yaml

Loc = tuple[str | int, ...]
"""Where a value sits in a YAML document: its keys and list indexes from the root."""


def bad_timestamp(root: yaml.Node | None) -> tuple[int, Loc, str] | None:
    """(line, key, text) of the first scalar YAML reads as a timestamp that is no real date."""
    loader = yaml.SafeLoader("")
    pending: list[tuple[yaml.Node, Loc]] = [(root, ())] if root is not None else []
    seen: set[int] = set()
    while pending:
        node, path = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag == "tag:yaml.org,2002:timestamp":
                try:
                    loader.construct_yaml_timestamp(node)
                except (ValueError, OverflowError):
                    return node.start_mark.line + 1, path, str(node.value)
        elif isinstance(node, yaml.MappingNode):
            pending += [(value, (*path, key.value)) for key, value in reversed(node.value)]
        else:  # a SequenceNode: YAML has no fourth kind of node
            pending += [(item, (*path, index)) for index, item in reversed(
                list(enumerate(node.value)))]
    return None

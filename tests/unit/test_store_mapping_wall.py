"""A wall, checked: turning a stored row into the domain's `Escalation` and `Gate`, and back,
is the store's (`daemon/store/mapping.py`). The jobs receive domain objects (`Loaded`) from
the store's `load_*` reads and hand back a `Step`; none of them reads or builds a row."""

from __future__ import annotations

import ast
from pathlib import Path

JOBS = Path(__file__).resolve().parents[2] / "daemon" / "jobs"
MAPPING = {"loaded", "escalation_row", "ee_work", "EscalationRow", "model_validate"}


def mapping_in(path: Path) -> list[str]:
    """Where `path` maps rows itself: a call of a mapping function or of a row constructor,
    or a read of a row's raw `data`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else "")
            if name in MAPPING:
                found.append(f"{path.name}:{node.lineno} {name}()")
        elif isinstance(node, ast.Attribute) and node.attr == "data" and \
                isinstance(node.value, ast.Name) and node.value.id in ("row", "previous"):
            found.append(f"{path.name}:{node.lineno} {node.value.id}.data")
    return found


def test_no_job_maps_a_row_to_the_domain_or_back() -> None:
    found = [where for path in sorted(JOBS.glob("*.py")) for where in mapping_in(path)]
    assert found == []

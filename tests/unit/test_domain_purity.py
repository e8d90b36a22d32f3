"""The domain stays pure: nothing under `daemon/domain/` reads a file, the environment or the
clock, or opens a connection. Those belong to the edges (`daemon.policy_source` reads the policy
file; the clock is a parameter), so the domain can be tested by tables and measured at 100%
branch coverage without a file system."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "daemon" / "domain"

# Modules whose import means I/O, the environment or the clock. `pathlib.PurePosixPath` and
# `datetime` (the types) are pure and allowed.
_IO_MODULES = {"os", "io", "sys", "socket", "subprocess", "shutil", "tempfile", "sqlite3",
               "asyncio", "asyncpg", "aiohttp", "time", "urllib", "http", "logging", "structlog"}
_IO_NAMES = {("pathlib", "Path")}
# Calls that read the world: files, the environment, the clock.
_IO_CALLS = {"open", "read_text", "read_bytes", "write_text", "write_bytes", "getenv", "now",
             "today", "utcnow", "monotonic"}


def impurities(source: str) -> list[str]:
    """What in `source` reads a file, the environment or the clock, as `line: what`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {alias.name}" for alias in node.names
                      if alias.name.split(".")[0] in _IO_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            root = node.module.split(".")[0]
            found += [f"{node.lineno}: from {node.module} import {alias.name}"
                      for alias in node.names
                      if root in _IO_MODULES or (node.module, alias.name) in _IO_NAMES]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else (
                func.id if isinstance(func, ast.Name) else "")
            if name in _IO_CALLS:
                found.append(f"{node.lineno}: {name}()")
        elif isinstance(node, ast.Attribute) and node.attr == "environ":
            found.append(f"{node.lineno}: environ")
    return found


@pytest.mark.parametrize("module", sorted(DOMAIN.glob("*.py")), ids=lambda path: path.name)
def test_the_domain_does_no_io(module: Path) -> None:
    assert impurities(module.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(("source", "what"), [
    ("from pathlib import Path\n", "1: from pathlib import Path"),
    ("import os\nx = os.environ['A']\n", "1: import os"),
    ("text = path.read_text(encoding='utf-8')\n", "1: read_text()"),
    ("from datetime import datetime\nat = datetime.now()\n", "2: now()"),
])
def test_the_purity_check_sees_io(source: str, what: str) -> None:
    assert what in impurities(source)


def test_a_pure_path_is_allowed() -> None:
    assert impurities("from pathlib import PurePosixPath\nPurePosixPath('runbooks/x.md')\n") == []

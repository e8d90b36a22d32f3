"""Shell blocks in the documentation that tests run, so the docs cannot drift from the code.

A fenced block whose info string is `sh test` is run as written (bash, `set -euo pipefail`).
Plain `sh` blocks are examples for a real host (sudo, systemctl, kubectl) and are not run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_FENCE = re.compile(r"^```sh test\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    script: str

    @property
    def name(self) -> str:
        return f"{self.path.name}:{self.line}"


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [Block(path, text.count("\n", 0, match.start()) + 1, match.group(1))
            for match in _FENCE.finditer(text)]


def run(block: Block, cwd: Path, env: dict[str, str], timeout_s: float = 120.0
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/bash", "-euo", "pipefail", "-c", block.script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout_s, check=False)


def command_shim(folder: Path) -> Path:
    """A directory holding a `tier2gate` that runs this checkout with this interpreter, as the
    installed console script would: put it first on PATH."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "tier2gate"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m daemon "$@"\n')
    shim.chmod(0o755)
    return bin_dir

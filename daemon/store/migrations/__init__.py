"""Schema migrations: numbered SQL files per dialect, applied in order, each exactly once."""

from __future__ import annotations

from importlib import resources


def migration_files(dialect: str) -> list[tuple[int, str, list[str]]]:
    """(version, name, statements) for every migration of the dialect, oldest first."""
    folder = resources.files(__package__).joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        version = int(entry.name.split("_", 1)[0])
        text = entry.read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
        statements = [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
        found.append((version, entry.name, statements))
    return sorted(found)

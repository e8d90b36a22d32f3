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


def refresh_statement(dialect: str, name: str) -> str:
    """The one `UPDATE` statement of migration file `name` (e.g. "0011_figures.sql"): the rule
    that derives columns from the rest of a row, kept once, for re-use after a bulk load."""
    for _, file_name, statements in migration_files(dialect):
        if file_name == name:
            updates = [s for s in statements if s.upper().startswith("UPDATE ")]
            if len(updates) == 1:
                return updates[0]
    raise LookupError(f"{dialect} migration {name} has no single UPDATE statement")

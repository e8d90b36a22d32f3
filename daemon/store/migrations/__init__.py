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
        found.append((version, entry.name, _statements("\n".join(lines))))
    return sorted(found)


def _statements(text: str) -> list[str]:
    """Statements split at `;`, except inside a trigger: its body's statements end with `;`
    too, and the trigger ends at its `END`."""
    statements: list[str] = []
    pending = ""
    for part in text.split(";"):
        pending = f"{pending};{part}" if pending else part.strip()
        if not pending:
            continue
        in_trigger = pending.upper().startswith("CREATE TRIGGER")
        if in_trigger and not pending.rstrip().upper().endswith("END"):
            continue
        statements.append(pending.strip())
        pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements


def refresh_statement(dialect: str, name: str) -> str:
    """The one `UPDATE` statement of migration file `name` (e.g. "0011_figures.sql"): the rule
    that derives columns from the rest of a row, kept once, for re-use after a bulk load."""
    for _, file_name, statements in migration_files(dialect):
        if file_name == name:
            updates = [s for s in statements if s.upper().startswith("UPDATE ")]
            if len(updates) == 1:
                return updates[0]
    raise LookupError(f"{dialect} migration {name} has no single UPDATE statement")

"""The team column (both backends): stored with the escalation, changed with it, a filter of
the pages, and copied by export/import; a store from before teams reads as the default team."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from daemon.store import Changes, Store, transfer
from daemon.store.units import Sql, Stmt, Unit
from tests.store.test_store_reads import EVERYTHING, at, walk
from tests.support import START


async def test_the_team_is_stored_and_follows_the_escalation(store: Store) -> None:
    row = replace(at("esc-a", START), team="emea")
    await store.apply(Changes(escalation=row))
    stored = await store.get_escalation("esc-a")
    assert stored is not None and stored.team == "emea"
    await store.apply(Changes(escalation=replace(stored, team="amer"), expected_version=1))
    moved = await store.get_escalation("esc-a")
    assert moved is not None and moved.team == "amer"


async def test_a_row_written_without_a_team_belongs_to_the_default_team(store: Store) -> None:
    await store.apply(Changes(escalation=at("esc-a", START)))
    stored = await store.get_escalation("esc-a")
    assert stored is not None and stored.team == "default"


async def test_pages_narrow_to_one_team_with_the_other_filters(store: Store) -> None:
    for esc_id, team, state, opened in (("a", "emea", "rfh", START),
                                        ("b", "amer", "rfh", START + 10),
                                        ("c", "emea", "paged", START + 20),
                                        ("d", "default", "rfh", START + 30)):
        await store.apply(Changes(escalation=replace(at(esc_id, opened, state=state),
                                                     team=team)))
    assert await walk(store, replace(EVERYTHING, team="emea"), 1) == ["c", "a"]
    assert await walk(store, replace(EVERYTHING, team="emea", state="rfh"), 10) == ["a"]
    assert await walk(store, replace(EVERYTHING, team="default"), 10) == ["d"]
    assert await walk(store, replace(EVERYTHING, team="nobody"), 10) == []
    assert await walk(store, EVERYTHING, 10) == ["d", "c", "b", "a"]


def _empty_escalations() -> Unit[None]:
    yield Stmt(Sql.of("DELETE FROM escalations"))


async def test_export_and_import_keep_the_team(store: Store) -> None:
    await store.apply(Changes(escalation=replace(at("esc-a", START), team="emea")))
    rows = await store.backend.run(partial(transfer.dump_table, "escalations"))
    assert rows[0]["team"] == "emea"
    older = [{k: v for k, v in row.items() if k != "team"} for row in rows]  # before teams
    for exported, expected in ((rows, "emea"), (older, "default")):
        await store.backend.run(_empty_escalations)
        await store.backend.run(partial(transfer.load_rows, "escalations", exported,
                                        store.backend.dialect))
        loaded = await store.get_escalation("esc-a")
        assert loaded is not None and loaded.team == expected

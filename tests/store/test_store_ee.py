"""The Escalation Engineer table `ee_work` (both backends): written with the escalation,
aggregated for the report, the open work per EE for the handoff, and pruned with it."""

from __future__ import annotations

from daemon.reporting.ee import ee_layer
from daemon.store import Changes, EEWork, Store
from tests.store.test_store_reads import at
from tests.support import START


def work(esc_id: str, **fields: object) -> EEWork:
    base: dict[str, object] = {"escalation_id": esc_id, "rotation": "r1", "opened_at": START,
                               "offered_at": START}
    # Each test overrides the columns it is about; the dataclass checks their names at run time.
    return EEWork(**{**base, **fields})  # type: ignore[arg-type]


async def test_the_ee_step_is_written_with_its_escalation_and_counted(store: Store) -> None:
    rows = [("esc-a", work("esc-a", owner="U1", assigned_at=START + 120, outcome="resolved")),
            ("esc-b", work("esc-b", owner="U1", assigned_at=START + 600, engineering=True,
                           outcome="engineering", open=True)),
            ("esc-c", work("esc-c", rotation="r2", owner="U2", assigned_at=START + 60,
                           open=True)),
            ("esc-d", work("esc-d", rotation="r2")),  # nobody took it
            ("esc-e", work("esc-e", owner="U2", assigned_at=START + 60, drill=True))]
    for esc_id, ee in rows:
        await store.apply(Changes(escalation=at(esc_id, START), ee=ee))
    # An update of the escalation updates its row (not a second one).
    row = await store.get_escalation("esc-c")
    assert row is not None
    await store.apply(Changes(escalation=row, expected_version=row.version,
                              ee=work("esc-c", rotation="r2", owner="U2",
                                      assigned_at=START + 60, outcome="resolved")))

    window = await store.ee_window(START - 1, START + 1)
    layer = ee_layer(window, await store.ee_open_per_owner())
    assert (layer.offered, layer.taken, layer.resolved_without_engineering,
            layer.reached_engineering) == (4, 3, 2, 1)
    assert layer.engineering_share == 0.25 and not layer.goal_met
    assert layer.time_to_engagement.samples == 3
    assert layer.time_to_engagement.p50_minutes == 2.0  # 1, 2 and 10 minutes
    assert {g.key: (g.offered, g.taken, g.open) for g in layer.by_rotation} == {
        "r1": (2, 2, 1), "r2": (2, 1, 0)}
    assert {g.key: g.resolved_without_engineering for g in layer.by_ee} == {"U1": 1, "U2": 1}
    assert layer.open_per_ee == {"U1": 1}
    owned = await store.ee_open_owned_by(["U1", "U2", "U9"])
    assert [(owner, row.id) for owner, row in owned] == [("U1", "esc-b")]
    assert (await store.ee_window(START + 1, START + 2)).groups == ()


async def test_an_escalation_pruned_takes_its_ee_row_with_it(store: Store) -> None:
    """Retention removes an escalation at rest with its timeline and its `ee_work` row (which
    references it: PostgreSQL would refuse the delete otherwise)."""
    await store.apply(Changes(escalation=at("esc-old", START, state="rfh"),
                              ee=work("esc-old", owner="U1", assigned_at=START + 60,
                                      outcome="resolved")))
    removed = await store.prune(START + 10, START + 10, START + 10)
    assert removed["escalations"] == 1
    assert await store.get_escalation("esc-old") is None
    assert (await store.ee_window(START - 1, START + 1)).groups == ()


async def test_resolved_without_engineering_and_reached_engineering_exclude_each_other(
        store: Store) -> None:
    """An EE said "resolved" on an escalation that had reached Engineering anyway (the SMOC
    was asked, or it had gone on to Tier 2): it counts once, as having reached Engineering."""
    await store.apply(Changes(escalation=at("esc-a", START), ee=work(
        "esc-a", owner="U1", assigned_at=START + 60, outcome="resolved", engineering=True)))
    await store.apply(Changes(escalation=at("esc-b", START), ee=work(
        "esc-b", owner="U1", assigned_at=START + 60, outcome="resolved")))
    layer = ee_layer(await store.ee_window(START - 1, START + 1), {})
    assert (layer.offered, layer.resolved_without_engineering,
            layer.reached_engineering) == (2, 1, 1)
    assert [(g.key, g.resolved_without_engineering, g.reached_engineering)
            for g in layer.by_ee] == [("U1", 1, 1)]

"""The SQLite writer's batches of deliveries: a burst queued while the writer is busy is
written as one multi-row INSERT, committed on its own; every delivery still gets exactly the
answer it would have got alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from daemon.store import Outage, Store, StoreUnavailable, open_store
from daemon.store.sqlite import BUSY_TIMEOUT_S
from daemon.store.units import Unit, UnitFactory

Call = tuple[str, str | None, bytes | None]  # delivery id, event type, body


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'batches.db'}", daemon=True)
    await opened.open()
    yield opened
    await opened.close()


def holding(gate: threading.Event) -> UnitFactory[None]:
    """A unit that keeps the writer thread until `gate` opens (units run in that thread)."""
    def unit() -> Unit[None]:
        gate.wait(10)
        return None
        yield  # a generator, like every unit

    return unit


async def one_batch(store: Store, calls: list[Call]) -> list[Any]:
    """Queue every call while the writer is held, then let it take them all at once.

    The answer of each call: its row id, None for a repeat, or the exception it raised."""
    gate = threading.Event()
    held = asyncio.ensure_future(store.backend.run(holding(gate)))
    await asyncio.sleep(0.05)  # the writer is now inside the holding unit
    pending = [asyncio.ensure_future(store.record_delivery(
        "incident_io", delivery_id, event_type, body, "intake"))  # type: ignore[arg-type]
        for delivery_id, event_type, body in calls]
    await asyncio.sleep(0)  # every call has queued its unit
    gate.set()
    await held
    return list(await asyncio.gather(*pending, return_exceptions=True))


async def test_a_burst_is_one_insert_and_each_delivery_gets_its_own_row(store: Store) -> None:
    rows = await one_batch(store, [(f"wh-{n}", "x", f"body-{n}".encode()) for n in range(40)])
    assert all(isinstance(row, int) for row in rows) and len(set(rows)) == 40
    for n, row in enumerate(rows):
        stored = await store.get_delivery(row)
        assert stored is not None and stored.body == f"body-{n}".encode()
        assert stored.delivery_id == f"wh-{n}"
    jobs = await store.claim_jobs("w", 30, 100)
    assert sorted(job.payload["delivery"] for job in jobs) == sorted(rows)


async def test_repeats_before_and_within_the_burst_answer_none(store: Store) -> None:
    earlier = await store.record_delivery("incident_io", "wh-seen", "x", b"old", "intake")
    calls: list[Call] = [("wh-a", "x", b"a"), ("wh-seen", "x", b"again"), ("wh-b", "x", b"b"),
                         ("wh-a", "x", b"a twice"), ("wh-c", "x", b"c")]
    rows = await one_batch(store, calls)
    assert [row is None for row in rows] == [False, True, False, True, False]
    for (delivery_id, _, body), row in zip(calls, rows, strict=True):
        if row is not None:
            stored = await store.get_delivery(row)
            assert stored is not None and (stored.delivery_id, stored.body) == (delivery_id, body)
    seen = await store.get_delivery(earlier or 0)
    assert seen is not None and seen.body == b"old"
    assert len(await store.claim_jobs("w", 30, 100)) == 4  # the earlier one and three new


async def test_all_repeats_answer_none_and_add_nothing(store: Store) -> None:
    for n in range(3):
        await store.record_delivery("incident_io", f"wh-{n}", "x", b"{}", "intake")
    rows = await one_batch(store, [(f"wh-{n}", "x", b"{}") for n in range(3)])
    assert rows == [None, None, None]
    assert len(await store.claim_jobs("w", 30, 100)) == 3


async def test_a_row_the_database_refuses_does_not_sink_its_neighbours(store: Store) -> None:
    # A NULL event type breaks NOT NULL: the merged INSERT fails and writes nothing, and the
    # batch is written again one unit at a time.
    rows = await one_batch(store, [("wh-1", "x", b"1"), ("wh-bad", None, b"2"),
                                   ("wh-3", "x", b"3")])
    assert isinstance(rows[0], int) and isinstance(rows[2], int)
    assert isinstance(rows[1], sqlite3.IntegrityError)
    assert {(await store.get_delivery(row)).body for row in (rows[0], rows[2])  # type: ignore[union-attr]
            } == {b"1", b"3"}
    assert len(await store.claim_jobs("w", 30, 100)) == 2


async def test_a_delivery_the_database_cannot_take_leaves_the_writer_running(
        store: Store) -> None:
    """An id that is not Unicode cannot be bound: that call fails, the batch's others are
    written and so is every later delivery (seen: an outside review; the writer thread died
    and every later delivery was refused until a restart)."""
    rows = await one_batch(store, [("wh-1", "x", b"1"), ("bad\udcff", "x", b"2")])
    assert isinstance(rows[0], int) and isinstance(rows[1], UnicodeEncodeError)
    alone = await asyncio.gather(store.record_delivery("incident_io", "bad\udcff", "x", b"3",
                                                       "intake"), return_exceptions=True)
    assert isinstance(alone[0], UnicodeEncodeError)
    later = await store.record_delivery("incident_io", "wh-later", "x", b"4", "intake")
    assert later is not None and (await store.get_delivery(later)).body == b"4"  # type: ignore[union-attr]


async def test_a_locked_database_is_reported_after_one_busy_timeout(store: Store,
                                                                    tmp_path: Path) -> None:
    """Another process holding the write lock: a delivery is refused as locked once the busy
    timeout has passed, not after waiting for it a second time (seen: an outside review,
    2.0 s for a 1 s timeout)."""
    other = sqlite3.connect(tmp_path / "batches.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as refused:
            await store.record_delivery("incident_io", "wh-1", "x", b"{}", "intake")
        waited = time.monotonic() - started
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert refused.value.kind is Outage.LOCKED
    assert BUSY_TIMEOUT_S <= waited < 2 * BUSY_TIMEOUT_S
    assert await store.record_delivery("incident_io", "wh-1", "x", b"{}", "intake") is not None

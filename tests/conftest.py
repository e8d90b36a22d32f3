"""Shared fixtures: stores on both backends, with PostgreSQL skipped (never in CI) when absent."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from daemon.clock import ManualClock
from daemon.store import Store
from daemon.store.postgres import PostgresBackend
from daemon.store.sqlite import SqliteBackend
from tests.support import POSTGRES_URL, START, StoreFactory, postgres_or_skip


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
                     ) -> AsyncIterator[StoreFactory]:
    """Opens stores on one database (call it twice for two 'replicas'); closes them after."""
    opened: list[Store] = []
    schema = f"t2g_{uuid.uuid4().hex[:10]}"
    if request.param == "postgres":
        url = postgres_or_skip()
        admin = await asyncpg.connect(url)
        await admin.execute(f'CREATE SCHEMA "{schema}"')

    def backend() -> PostgresBackend | SqliteBackend:
        if request.param == "postgres":
            return PostgresBackend(POSTGRES_URL, schema=schema, pool_size=4)
        return SqliteBackend(tmp_path / "db" / "tier2gate.db")

    async def factory() -> Store:
        store = Store(backend(), clock)
        await store.open()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()
    if request.param == "postgres":
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> Store:
    return await make_store()


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """For the CLI commands: a config naming a SQLite file in tmp_path, and no stray
    TIER2GATE_* settings."""
    for name in list(os.environ):
        if name.startswith("TIER2GATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "report.db"
    config = tmp_path / "tier2gate.yaml"
    config.write_text(f"database_url: sqlite:///{database}\n", encoding="utf-8")
    monkeypatch.setenv("TIER2GATE_CONFIG", str(config))
    return database

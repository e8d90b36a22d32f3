"""Readiness follows the store: 503 with the reason as soon as the database is gone."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from daemon.app import build_app
from daemon.settings import Settings
from daemon.store import Store
from daemon.store.postgres import PostgresBackend
from daemon.store.sqlite import SqliteBackend
from tests.fakes.tcp_proxy import CuttableProxy
from tests.harness import both_listeners
from tests.support import postgres_or_skip


async def test_sqlite_readiness_goes_503_when_the_database_file_is_gone(tmp_path: Path) -> None:
    db = tmp_path / "var" / "t.db"
    store = Store(SqliteBackend(db, exclusive=True))
    async with both_listeners(build_app(Settings(), store)) as (client, admin):
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz")
        assert (ready.status, await ready.json()) == (200, {"status": "ready"})
        db.unlink()
        ready = await client.get("/readyz")  # public: no reasons (they name the database)
        assert (ready.status, await ready.json()) == (503, {"status": "unavailable"})
        ready = await admin.get("/readyz")
        assert ready.status == 503
        body = await ready.json()
        assert body["status"] == "unavailable"
        assert body["problems"] == [f"store: database file {db} is missing"]
        assert (await client.get("/healthz")).status == 200


async def test_postgres_readiness_goes_503_when_the_server_is_unreachable() -> None:
    url = urlsplit(postgres_or_skip())
    proxy = CuttableProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    dsn = url._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    store = Store(PostgresBackend(dsn, connect_timeout_s=1.0))
    try:
        async with both_listeners(build_app(Settings(), store)) as (_client, admin):
            assert (await admin.get("/readyz")).status == 200
            proxy.cut()
            ready = await admin.get("/readyz")
            assert ready.status == 503
            [problem] = (await ready.json())["problems"]
            assert problem.startswith("store: ")
            metrics = await admin.get("/metrics")
            assert metrics.status == 200
            assert 'tier2gate_http_requests_total{route="/readyz",status="503"} 1.0' in (
                await metrics.text())
    finally:
        await proxy.close()

"""PostgreSQL backend (asyncpg): several replicas share one database.

Each unit runs in its own transaction on a pooled connection. Jobs are claimed with
`FOR UPDATE SKIP LOCKED` (see units.CLAIM_JOBS), so replicas never run the same job at once, and
migrations are serialised by an advisory lock so replicas starting together do not race.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import asyncpg

from daemon.integrations.failures import clean
from daemon.settings import database_password
from daemon.store.migrations import migration_files
from daemon.store.records import Outage, StoreUnavailable, unavailable
from daemon.store.units import UnitFactory

_MIGRATION_LOCK = 0x7432_6761_7465  # "t2gate": one advisory lock id for schema changes

# InternalClientError: a pooled connection the server terminated mid-operation.
_UNAVAILABLE = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                asyncpg.CannotConnectNowError, asyncpg.InternalClientError, TimeoutError)
# SQLSTATEs that mean "the server cannot serve us right now", not "this query is wrong", by
# kind (postgresql.org/docs/current/errcodes-appendix.html). 25006 read_only_sql_transaction is
# what a standby (or a primary demoted by a failover, or default_transaction_read_only) answers
# to any write: "cannot execute INSERT in a read-only transaction".
_OUTAGE_STATES = {"25006": Outage.READ_ONLY, "53100": Outage.DISK_FULL,
                  "55P03": Outage.LOCKED, "57014": Outage.TIMEOUT}
# Whole classes: connection exception, insufficient resources, object not in prerequisite
# state (e.g. the database does not allow connections), operator intervention (shutdown,
# "the database system is starting up"), system error.
_OUTAGE_CLASSES = {"08": Outage.UNREACHABLE, "53": Outage.UNAVAILABLE,
                   "55": Outage.UNAVAILABLE, "57": Outage.UNREACHABLE,
                   "58": Outage.UNAVAILABLE}
# A DSN asyncpg cannot parse, or credentials the server refuses: the operator must fix the URL,
# and the message says what is wrong with it (never the URL itself, which holds the password).
_MISCONFIGURED = (ValueError, asyncpg.ClientConfigurationError,
                  asyncpg.InvalidAuthorizationSpecificationError)


def _outage_kind(exc: BaseException) -> Outage | None:
    """The outage an asyncpg/OS error means, or None when it is this query's own fault."""
    if isinstance(exc, TimeoutError):
        return Outage.TIMEOUT
    if isinstance(exc, _UNAVAILABLE):
        return Outage.UNREACHABLE
    if not isinstance(exc, asyncpg.PostgresError):
        return None
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return _OUTAGE_STATES.get(sqlstate) or _OUTAGE_CLASSES.get(sqlstate[:2])


def _where(dsn: str) -> str:
    """The store's name in messages, host:port/database: never the user or password. A URL
    that does not parse is said so when it is opened (`open`), not here."""
    parts = urlsplit(dsn)
    try:
        port = str(parts.port or 5432)
    except ValueError:
        port = "?"
    return f"{parts.hostname or 'localhost'}:{port}{parts.path}"


class PostgresBackend:
    dialect = "postgres"
    single_node = False

    def __init__(self, dsn: str, *, pool_size: int = 10, connect_timeout_s: float = 5.0,
                 schema: str | None = None) -> None:
        """`schema`: keep tier2gate's tables in their own schema (it must exist)."""
        self._dsn = dsn
        self.where = _where(dsn) + (f" (schema {schema})" if schema else "")
        self._secrets = database_password(dsn)
        self._server_settings = {"search_path": schema} if schema else None
        self._pool_size = pool_size
        self._timeout_s = connect_timeout_s
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=1, max_size=self._pool_size, timeout=self._timeout_s,
                command_timeout=30, server_settings=self._server_settings,
            )
            await self.migrate()
        except _MISCONFIGURED as exc:
            said = clean(str(exc), self._secrets)
            raise StoreUnavailable(
                f"cannot open PostgreSQL: {type(exc).__name__}: {said}; check database_url"
            ) from None
        except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
            # e.g. a read-only standby: the migration's first CREATE TABLE is refused (25006).
            failure = self._unavailable(exc)
            if failure is exc:
                raise
            raise failure from None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _unavailable(self, exc: BaseException) -> BaseException:
        """The classified outage for `exc`, or `exc` itself when it is not one (a bug)."""
        kind = _outage_kind(exc)
        if kind is None:
            return exc
        words = str(exc).strip().splitlines()
        detail = (f"{type(exc).__name__}: {clean(words[0], self._secrets)[:200]}" if words
                  else type(exc).__name__)
        return unavailable("PostgreSQL", self.where, kind, detail)

    def check(self) -> None:
        if self._pool is None:
            raise StoreUnavailable("PostgreSQL pool is closed")

    async def migrate(self) -> None:
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                    " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
                )
                applied = {r["version"] for r in await conn.fetch(
                    "SELECT version FROM schema_migrations")}
                for version, name, statements in migration_files(self.dialect):
                    if version in applied:
                        continue
                    async with conn.transaction():
                        for statement in statements:
                            await conn.execute(statement)
                        await conn.execute(
                            "INSERT INTO schema_migrations VALUES"
                            " ($1, $2, extract(epoch from now()))",
                            version, name,
                        )
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

    async def run(self, factory: UnitFactory[Any]) -> Any:
        if self._pool is None:
            raise StoreUnavailable("PostgreSQL pool is closed")
        try:
            async with self._pool.acquire(timeout=self._timeout_s) as conn, conn.transaction():
                unit = factory()
                try:
                    stmt = next(unit)
                    while True:
                        rows = await conn.fetch(stmt.sql.postgres, *stmt.args)
                        stmt = unit.send(rows)
                except StopIteration as stop:
                    return stop.value
        except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
            failure = self._unavailable(exc)
            if failure is exc:
                raise
            raise failure from None

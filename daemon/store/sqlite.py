"""SQLite backend: one writer thread that group-commits whatever is queued.

Every webhook must be fsync'd before we answer 2xx. One fsync per request caps intake at the
disk's sync rate; instead the writer takes *everything* waiting in its queue, runs the units one
after the other in one transaction, and commits once. There is no waiting window: a lone
request commits immediately, a burst shares one fsync. One failing unit does not sink its
neighbours: the batch is then rolled back and run again with a SAVEPOINT around each unit.

The writer thread and the event loop share the GIL, so the writer's per-unit overhead is paid
twice (every statement hands the GIL over and back, and under load the event loop keeps it for
a while before the writer gets it back). It therefore runs no statement it does not need (no
savepoints unless a unit failed), merges the one-row INSERTs of consecutive deliveries into
one statement (`units.Merge`), commits a batch of nothing but those without BEGIN and COMMIT
(a lone statement is its own transaction), and wakes each event loop once per batch. Measured
during a burst of deliveries: each statement waited 100-200 µs for the GIL, and a batch of
BEGIN, eight INSERTs and COMMIT took about 1.4 ms before the fsync (bench/README).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import queue
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from daemon.store.migrations import migration_files
from daemon.store.reads import local_weekend
from daemon.store.records import Outage, StoreUnavailable, unavailable
from daemon.store.units import Stmt, Unit, UnitFactory

BUSY_TIMEOUT_S = 1.0
"""How long a write waits for another process's lock before failing as `Outage.LOCKED`.

Only this process writes (it holds the file exclusively), so a busy database means someone
else (a sqlite3 shell, a backup, `tier2gate jobs retry`) holds the write lock; their own
transactions last milliseconds. It must stay well under the Slack endpoints' store wait
(`ingress.slack.STORE_WAIT_S`, itself under Slack's 3 s): the writer is one thread, so a request
queued behind a waiting batch waits for that batch and then its own."""

# SQLite primary result codes (sqlite.org/rescode.html) that mean "not now", by outage kind.
_OUTAGES = {5: Outage.LOCKED, 6: Outage.LOCKED, 8: Outage.READ_ONLY, 13: Outage.DISK_FULL,
            14: Outage.UNREACHABLE}
# OS errors while creating the folder or the lock file that mean "cannot write here".
_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


@dataclass
class _Work:
    factory: UnitFactory[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_STOP = object()

_MERGE_MAX = 256
"""Rows in one merged INSERT (`_insert_many`): 8 parameters each, far under SQLite's limit of
32,766 (sqlite.org/limits.html, SQLITE_MAX_VARIABLE_NUMBER)."""


class _UnitFailed(Exception):
    """A unit raised inside an optimistic (savepoint-free) batch: rerun it with savepoints."""


def _drive_from(cursor: sqlite3.Cursor, unit: Unit[Any], first: Stmt | _Ended) -> Any:
    """Run a started unit (`_start`) from its pending statement to its result."""
    if isinstance(first, _Ended):
        return first.result
    stmt = first
    try:
        while True:
            cursor.execute(stmt.sql.sqlite, stmt.args)
            if stmt.sql.sqlite_new_id:
                # No RETURNING: no second step. `rowcount` counts the INSERT's own row (not
                # what its triggers insert) and `lastrowid` is that row's, triggers or not.
                rows = [{"id": cursor.lastrowid}] if cursor.rowcount == 1 else []
            else:
                rows = cursor.fetchall()
            stmt = unit.send(rows)
    except StopIteration as stop:
        return stop.value


def _insert_many(cursor: sqlite3.Cursor, stmts: list[Stmt]) -> list[list[dict[str, int]]]:
    """Run several one-row INSERTs of the same mergeable `Sql` as one statement (`Merge`);
    each unit gets the rows it would have got alone (`Sql.sqlite_new_id`).

    Raises sqlite3.IntegrityError, having written nothing, when any row repeats a key (seen
    before, or twice here): those units must be run one at a time."""
    cursor.execute(stmts[0].sql.sqlite_many(len(stmts)),
                   [arg for stmt in stmts for arg in stmt.args])
    last = cursor.lastrowid
    if cursor.rowcount != len(stmts) or last is None:  # not SQLite as documented: be careful
        raise _UnitFailed(f"{cursor.rowcount} of {len(stmts)} merged rows inserted")
    return [[{"id": last - len(stmts) + 1 + offset}] for offset in range(len(stmts))]


def _mergeable(started: list[tuple[_Work, Unit[Any], Stmt | _Ended]]) -> list[Stmt] | None:
    """The statements of a batch that is nothing but one mergeable INSERT per unit."""
    first = started[0][2]
    if not isinstance(first, Stmt) or first.sql.sqlite_merge is None or (
            len(started) > _MERGE_MAX):
        return None
    stmts = [stmt for _, _, stmt in started if isinstance(stmt, Stmt) and stmt.sql is first.sql]
    return stmts if len(stmts) == len(started) else None


@dataclass
class _Ended:
    result: Any


def _start(work: _Work) -> tuple[_Work, Unit[Any], Stmt | _Ended]:
    """A unit, made and run to its first statement (or to its end, when it needs none)."""
    unit = work.factory()
    try:
        return work, unit, next(unit)
    except StopIteration as stop:
        return work, unit, _Ended(stop.value)


def _finish(work: _Work, unit: Unit[Any], rows: list[dict[str, int]]
            ) -> tuple[_Work, Any, BaseException | None]:
    """The outcome of a unit whose only statement (`units.Merge`) ran merged with others'."""
    try:
        unit.send(rows)
    except StopIteration as stop:
        return work, stop.value, None
    except Exception as exc:  # noqa: BLE001 - the unit's own error, for its caller
        return work, None, exc
    return work, None, TypeError("a mergeable statement must be its unit's only one")


def _settle(outcomes: list[tuple[_Work, Any, BaseException | None]]) -> None:
    for work, result, error in outcomes:
        if work.future.done():
            continue
        if error is not None:
            work.future.set_exception(error)
        else:
            work.future.set_result(result)


def _deliver(outcomes: list[tuple[_Work, Any, BaseException | None]]) -> None:
    """Hand a batch's results to their event loops: one wake-up per loop, not per unit."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Work, Any, BaseException | None]]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle, settled)


def _outage(path: Path, exc: sqlite3.Error) -> StoreUnavailable:
    """SQLite's error as a classified outage naming the file (the message is SQLite's own)."""
    code = getattr(exc, "sqlite_errorcode", None)
    kind = _OUTAGES.get(code & 0xFF, Outage.UNAVAILABLE) if code is not None else (
        Outage.UNAVAILABLE)
    return unavailable("SQLite", str(path), kind, str(exc))


class SqliteBackend:
    dialect = "sqlite"

    def __init__(self, path: Path, *, exclusive: bool = False) -> None:
        """`exclusive`: this process is *the* daemon on this file (`serve`, `demo`); a second
        one is refused, which makes it safe to requeue interrupted jobs at start."""
        self.path = path
        self.single_node = exclusive
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock_file: IO[bytes] | None = None

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.single_node:
                self._lock()
        except OSError as exc:
            # Not the listener's problem: say which file could not be written and why.
            kind = Outage.READ_ONLY if exc.errno in _READ_ONLY_ERRNOS else Outage.UNAVAILABLE
            detail = f"cannot create {exc.filename or self.path}: {exc.strerror or exc}"
            raise unavailable("SQLite", str(self.path), kind, detail) from None
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(
            target=self._main, args=(loop, ready), name="tier2gate-sqlite", daemon=True
        )
        self._thread.start()
        await ready

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        lock_file = lock_path.open("ab")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise StoreUnavailable(
                f"another tier2gate process is serving {self.path}; SQLite supports one "
                "process — use PostgreSQL (database_url: postgresql://...) for several replicas",
                Outage.LOCKED) from None
        self._lock_file = lock_file

    async def run(self, factory: UnitFactory[Any]) -> Any:
        if self._thread is None or not self._thread.is_alive():
            raise unavailable("SQLite", str(self.path), Outage.UNAVAILABLE,
                              "the writer thread is not running")
        loop = asyncio.get_running_loop()
        work = _Work(factory, loop.create_future(), loop)
        self._queue.put(work)
        return await work.future

    def check(self) -> None:
        """A deleted database file would swallow every write without error: refuse readiness."""
        if not self.path.exists():
            raise StoreUnavailable(f"database file {self.path} is missing")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        conn.row_factory = sqlite3.Row
        conn.create_function("local_weekend", 3, local_weekend, deterministic=True)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for version, name, statements in migration_files(self.dialect):
            if version in applied:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, strftime('%s','now'))",
                    (version, name),
                )
                conn.execute("COMMIT")
            except sqlite3.Error:
                conn.execute("ROLLBACK")
                raise

    def _main(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = self._connect()
            self._migrate(conn)
        except sqlite3.Error as exc:
            loop.call_soon_threadsafe(ready.set_exception, _outage(self.path, exc))
            return
        loop.call_soon_threadsafe(ready.set_result, None)
        try:
            stopping = False
            while not stopping:
                batch = [self._queue.get()]
                while True:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                if any(item is _STOP for item in batch):
                    stopping = True
                    batch = [item for item in batch if item is not _STOP]
                if batch:
                    self._commit_batch_or_fail(conn, batch)
        finally:
            conn.close()

    def _commit_batch_or_fail(self, conn: sqlite3.Connection, batch: list[_Work]) -> None:
        """`_commit_batch`, and if it raises after all (a bug of ours), that batch's callers get
        the error and the writer goes on: one bad batch must not leave the store without its
        writer, every later delivery refused until a restart."""
        try:
            self._commit_batch(conn, batch)
        except Exception as exc:  # noqa: BLE001 - handed to the callers, who log it
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            _deliver([(work, None, exc) for work in batch if not work.future.done()])

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[_Work]) -> None:
        """One transaction, one fsync for the whole batch.

        Optimistically the units run back to back without savepoints (most batches have no
        failing unit, and every statement saved is a GIL round trip saved). If one unit raises,
        the transaction is rolled back and the batch runs again with a SAVEPOINT per unit, so a
        failing unit still does not sink its neighbours. Units are pure functions of the rows
        they read, so running one again after a rollback decides the same way.
        """
        # A caller that stopped waiting (the Slack endpoints' bounded wait) cancelled its future:
        # do not write what it already answered 503 for. Reading the state from this thread is
        # a benign race: a cancellation landing after this check is stored, the "store later"
        # case the state machine handles like any repeated click.
        batch = [work for work in batch if not work.future.cancelled()]
        if not batch:
            return
        tried, alone = self._insert_alone(conn, batch)
        if alone is not None:
            _deliver(alone)
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # A merged INSERT that failed alone fails again: straight to one at a time.
                outcomes = (self._run_units(conn, batch, isolated=True)
                            if len(batch) == 1 or tried else self._run_merged(conn, batch))
            except _UnitFailed:
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                outcomes = self._run_units(conn, batch, isolated=True)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = _outage(self.path, exc)
            outcomes = [(work, None, failure) for work in batch]
        _deliver(outcomes)

    def _insert_alone(self, conn: sqlite3.Connection, batch: list[_Work]
                      ) -> tuple[bool, list[tuple[_Work, Any, BaseException | None]] | None]:
        """A batch of nothing but mergeable INSERTs (a burst of deliveries) as one statement
        outside BEGIN ... COMMIT: SQLite commits a lone statement by itself, so the batch costs
        one step, one fsync and one GIL hand-over, where BEGIN, the INSERT and COMMIT cost
        three. (whether it was tried, the outcomes); no outcomes when the batch is not such a
        batch or the statement failed, which then wrote nothing: the caller runs the batch
        the careful way (one failing row must not sink its neighbours)."""
        try:
            started = [_start(work) for work in batch]
        except Exception:  # noqa: BLE001 - the careful way gives that unit its own error
            return False, None
        stmts = _mergeable(started)
        if stmts is None:
            return False, None
        try:
            rows = _insert_many(conn.cursor(), stmts)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in _OUTAGES:
                # Locked, read-only, full, unreachable: the careful way would only wait for it
                # again (a lock for the whole busy timeout once more). Nothing was written.
                failure = _outage(self.path, exc)
                return True, [(work, None, failure) for work in batch]
            return True, None
        except _UnitFailed as exc:  # written, but not as SQLite documents: say so, lose nothing
            failure = unavailable("SQLite", str(self.path), Outage.UNAVAILABLE, str(exc))
            return True, [(work, None, failure) for work in batch]
        except Exception:  # noqa: BLE001 - a failed statement outside a transaction wrote
            # nothing: a repeat, a row the database refuses, an argument it cannot take (text
            # that is not Unicode). The careful way gives the unit at fault its own error.
            return True, None
        return True, [_finish(work, unit, its_rows)
                      for (work, unit, _), its_rows in zip(started, rows, strict=True)]

    def _run_merged(self, conn: sqlite3.Connection, batch: list[_Work]
                    ) -> list[tuple[_Work, Any, BaseException | None]]:
        """The optimistic pass: each unit in turn, without savepoints, and the one-statement
        units of a mergeable INSERT that follow each other as one statement (`_insert_many`).
        Any failure raises `_UnitFailed`: the caller rolls back and runs `_run_units`."""
        cursor = conn.cursor()
        outcomes: list[tuple[_Work, Any, BaseException | None]] = []
        try:
            # Starting a unit runs no SQL: it computes its first statement from its arguments.
            started = [_start(work) for work in batch]
            index = 0
            while index < len(started):
                work, unit, first = started[index]
                end = index + 1
                if isinstance(first, Stmt) and first.sql.sqlite_merge is not None:
                    while (end < len(started) and end - index < _MERGE_MAX
                           and isinstance(following := started[end][2], Stmt)
                           and following.sql is first.sql):
                        end += 1
                if end - index > 1:
                    run = started[index:end]
                    merged = _insert_many(cursor, [stmt for _, _, stmt in run
                                                    if isinstance(stmt, Stmt)])
                    finished = [_finish(each, its_unit, rows)
                                for (each, its_unit, _), rows in zip(run, merged, strict=True)]
                    if any(error is not None for _, _, error in finished):
                        raise _UnitFailed("a merged unit failed")
                    outcomes.extend(finished)
                else:
                    outcomes.append((work, _drive_from(cursor, unit, first), None))
                index = end
        except _UnitFailed:
            raise
        except Exception as exc:
            raise _UnitFailed from exc
        return outcomes

    def _run_units(self, conn: sqlite3.Connection, batch: list[_Work], *, isolated: bool
                   ) -> list[tuple[_Work, Any, BaseException | None]]:
        """Run each unit; `isolated`: a failing unit rolls back only itself (a SAVEPOINT each,
        or the whole transaction when the batch is that one unit)."""
        outcomes: list[tuple[_Work, Any, BaseException | None]] = []
        savepoints = isolated and len(batch) > 1
        cursor = conn.cursor()
        for work in batch:
            if savepoints:
                conn.execute("SAVEPOINT unit")
            try:
                _, unit, first = _start(work)
                result = _drive_from(cursor, unit, first)
            except Exception as exc:
                if not isolated:
                    raise _UnitFailed from exc
                if savepoints:
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                else:
                    conn.execute("ROLLBACK")
                    conn.execute("BEGIN IMMEDIATE")
                if isinstance(exc, sqlite3.OperationalError):
                    exc = _outage(self.path, exc)
                outcomes.append((work, None, exc))
            else:
                if savepoints:
                    conn.execute("RELEASE unit")
                outcomes.append((work, result, None))
        return outcomes

"""Store operations written once for both databases, as generators of SQL statements.

Each unit yields `Stmt`s and receives the rows each returned; a backend drives it inside one
transaction (SQLite: synchronously in its writer thread; PostgreSQL: with asyncpg). This keeps a
single copy of every query and every rule about what is written together, so the store contract
is the same on both backends by construction.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from daemon.domain.events import EventKind
from daemon.store.load_facts import PAGE_EVENTS, reaches
from daemon.store.records import (
    Changes,
    Conflict,
    Delivery,
    DeliveryState,
    Duplicate,
    EEWork,
    EscalationRow,
    Job,
    JobState,
    NewEvent,
    NewJob,
    TimelineEntry,
)

T = TypeVar("T")
Row = Any  # sqlite3.Row or asyncpg.Record: both index by column name
Unit = Generator["Stmt", list[Row], T]
UnitFactory = Callable[[], Unit[T]]

_PLACEHOLDER = re.compile(r"\?")


@dataclass(frozen=True)
class Merge:
    """How the SQLite writer may run several one-row INSERTs of one `Sql` as one statement.

    `row`: the INSERT's one `VALUES` row, repeated once per unit. `skip`: its clause that
    skips a row whose key is there already (`ON CONFLICT ... DO NOTHING`), left out of the
    merged statement: a repeat then fails the whole statement, which writes nothing, and the
    writer runs those units one at a time. So every merged statement inserts all its rows,
    whose rowids are consecutive (AUTOINCREMENT, one writer) and end at `lastrowid`."""

    row: str
    skip: str


@dataclass(frozen=True)
class Sql:
    """One statement in both dialects; PostgreSQL gets `$n` placeholders unless given its own.

    `sqlite_new_id`: on SQLite an INSERT of one row whose rows are read from the cursor, not
    from a RETURNING clause: `[{"id": <its rowid>}]` when it inserted, `[]` when it did not (a
    conflict). The writer thread then steps the statement once instead of twice, and each step
    hands the GIL to the event loop and back.

    `sqlite_merge`: such an INSERT may be merged (`Merge`): the SQLite writer runs the
    statements of consecutive units of a batch that consist of this statement alone as one
    INSERT of many rows (`sqlite_many`): one step, one GIL hand-over, instead of one per unit.
    Each unit still receives its own rows, as `sqlite_new_id` says."""

    sqlite: str
    postgres: str
    sqlite_new_id: bool = False
    sqlite_merge: Merge | None = None

    @classmethod
    def of(cls, text: str, postgres: str | None = None, *, sqlite_new_id: bool = False,
           sqlite_merge: Merge | None = None) -> Sql:
        counter = iter(range(1, 1000))
        dollar = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", postgres or text)
        if sqlite_merge and (not sqlite_new_id or text.count(sqlite_merge.row) != 1
                             or text.count(sqlite_merge.skip) != 1):
            raise ValueError("a mergeable row belongs to a one-row INSERT that names it and its"
                             " conflict clause once")
        return cls(text, dollar, sqlite_new_id, sqlite_merge)

    def sqlite_many(self, count: int) -> str:
        """The SQLite text inserting `count` rows in one statement (needs `sqlite_merge`)."""
        assert self.sqlite_merge is not None
        return _many(self.sqlite, self.sqlite_merge, count)


@functools.lru_cache(maxsize=256)
def _many(text: str, merge: Merge, count: int) -> str:
    # Kept per size: the same text lets sqlite3's statement cache reuse the prepared statement.
    return text.replace(merge.row, ", ".join([merge.row] * count), 1).replace(merge.skip, "", 1)


@dataclass(frozen=True)
class Stmt:
    sql: Sql
    args: tuple[Any, ...] = ()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


_JOB_COLUMNS = (
    "id, kind, key, payload, escalation_id, state, run_at, attempts, last_error,"
    " lease_owner, lease_until, created_at, updated_at"
)
_ESC_COLUMNS = (
    "id, source, external_id, state, outcome, data, version, opened_at, created_at, updated_at,"
    " attention, drill, team"
)

PING = Sql.of("SELECT count(*) AS n FROM schema_migrations")
# A delivery and its processing job in one statement: a statement is the writer's unit of
# cost (each one hands the GIL over and back). SQLite inserts the job in the trigger
# `deliveries_job` (migration 0011); PostgreSQL in a data-modifying CTE.
_DELIVERY_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"
_DELIVERY_SKIP = " ON CONFLICT (source, delivery_id) DO NOTHING"
_DELIVERY_VALUES = (
    "INSERT INTO deliveries (source, delivery_id, event_type, received_at, body, state, note,"
    f" job_kind) VALUES {_DELIVERY_ROW}{_DELIVERY_SKIP}"
)
INSERT_DELIVERY = Sql.of(
    _DELIVERY_VALUES,
    "WITH d AS (" + _DELIVERY_VALUES.replace("?, ?, ?, ?, ?, ?, ?, ?)",
                                             "?, ?, ?, ?, ?, ?, ?, ?::text)")
    + " RETURNING id), j AS (INSERT INTO jobs (kind, key, payload, escalation_id, state,"
    " run_at, attempts, last_error, created_at, updated_at) SELECT $8::text, 'delivery:' || d.id,"
    " '{\"delivery\":' || d.id || '}', NULL, 'queued', $4, 0, '', $4, $4 FROM d"
    " WHERE $8::text IS NOT NULL ON CONFLICT (key) DO NOTHING) SELECT id FROM d",
    sqlite_new_id=True,
    sqlite_merge=Merge(_DELIVERY_ROW, _DELIVERY_SKIP),
)
INSERT_JOB = Sql.of(
    "INSERT INTO jobs (kind, key, payload, escalation_id, state, run_at, attempts, last_error,"
    " created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', ?, 0, '', ?, ?)"
    " ON CONFLICT (key) DO NOTHING RETURNING id"
)
_CLAIM = (
    f"UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?,"
    f" attempts = attempts + 1, updated_at = ?"
    f" WHERE id IN (SELECT id FROM jobs WHERE (state = 'queued' AND run_at <= ?)"
    f" OR (state = 'running' AND lease_until < ?) ORDER BY run_at LIMIT ?{{lock}})"
    f" RETURNING {_JOB_COLUMNS}"
)
# SQLite cannot use an index for "ORDER BY run_at" over an OR of two partial conditions: it
# would sort every due job to claim a handful, and a backlog of 10,000 deliveries made each claim
# cost milliseconds of the single writer's time. Taking the first `limit` of each side from its
# own partial index (jobs_due, jobs_leased) and merging them claims the same jobs in O(limit).
# `?N` reuses the same six arguments in the same order as the PostgreSQL text.
_CLAIM_SQLITE = (
    f"UPDATE jobs SET state = 'running', lease_owner = ?1, lease_until = ?2,"
    f" attempts = attempts + 1, updated_at = ?3"
    f" WHERE id IN (SELECT id FROM ("
    f"SELECT id, run_at FROM (SELECT id, run_at FROM jobs INDEXED BY jobs_due"
    f" WHERE state = 'queued'"
    f" AND run_at <= ?4 ORDER BY run_at LIMIT ?6)"
    f" UNION ALL SELECT id, run_at FROM (SELECT id, run_at FROM jobs INDEXED BY jobs_leased"
    f" WHERE state = 'running'"
    f" AND lease_until < ?5 ORDER BY run_at LIMIT ?6)"
    f") ORDER BY run_at LIMIT ?6)"
    f" RETURNING {_JOB_COLUMNS}"
)
CLAIM_JOBS = Sql.of(_CLAIM_SQLITE, _CLAIM.format(lock=" FOR UPDATE SKIP LOCKED"))
EXTEND_LEASE = Sql.of(
    "UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_owner = ? AND state = 'running'"
    " RETURNING id"
)
FINISH_JOB = Sql.of(
    "UPDATE jobs SET state = ?, run_at = ?, last_error = ?, lease_owner = NULL,"
    " lease_until = NULL, updated_at = ? WHERE id = ? AND lease_owner = ? AND state = 'running'"
    " RETURNING id"
)
RELEASE_JOBS = Sql.of(
    "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_owner = NULL,"
    " lease_until = NULL, updated_at = ? WHERE lease_owner = ? AND state = 'running'"
    " RETURNING id"
)
RELEASE_ORPHANS = Sql.of(
    "UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, updated_at = ?"
    " WHERE state = 'running' RETURNING id"
)
NEXT_DUE = Sql.of("SELECT min(run_at) AS at FROM jobs WHERE state = 'queued'")
JOB_COUNTS = Sql.of("SELECT state, count(*) AS n FROM jobs GROUP BY state")
GET_JOB = Sql.of(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?")
LIST_JOBS = Sql.of(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = ? ORDER BY id LIMIT ?")
INSERT_EVENT = Sql.of(
    "INSERT INTO timeline (escalation_id, at, event, actor, details, once_key)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (escalation_id, once_key) DO NOTHING RETURNING id"
)
TIMELINE = Sql.of(
    "SELECT id, escalation_id, at, event, actor, details FROM timeline"
    " WHERE escalation_id = ? ORDER BY id"
)
INSERT_ESCALATION = Sql.of(
    f"INSERT INTO escalations ({_ESC_COLUMNS}, decided_weekend, decision_criteria, customer,"
    " custom_fields, reference, title, severity)"
    " VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING RETURNING id"
)
UPDATE_ESCALATION = Sql.of(
    "UPDATE escalations SET state = ?, outcome = ?, data = ?, version = version + 1,"
    " opened_at = ?, updated_at = ?, attention = ?, team = ?, decided_weekend = ?,"
    " decision_criteria = ?, customer = ?, custom_fields = ?, reference = ?, title = ?,"
    " severity = ? WHERE id = ? AND version = ? RETURNING id"
)
GET_ESCALATION = Sql.of(f"SELECT {_ESC_COLUMNS} FROM escalations WHERE id = ?")
FIND_ESCALATION = Sql.of(
    f"SELECT {_ESC_COLUMNS} FROM escalations WHERE source = ? AND external_id = ?"
)
NEEDING_ATTENTION = Sql.of(
    f"SELECT {_ESC_COLUMNS} FROM escalations WHERE attention = 1 ORDER BY opened_at DESC LIMIT ?"
)
COUNT_NEEDING_ATTENTION = Sql.of("SELECT count(*) AS n FROM escalations WHERE attention = 1")
LIST_ESCALATIONS = Sql.of(
    f"SELECT {_ESC_COLUMNS} FROM escalations WHERE opened_at >= ?"
    " ORDER BY opened_at DESC LIMIT ?"
)
ESCALATIONS_IN = Sql.of(
    f"SELECT {_ESC_COLUMNS} FROM escalations WHERE state = ? ORDER BY opened_at LIMIT ?"
)
GET_DELIVERY = Sql.of(
    "SELECT id, source, delivery_id, event_type, received_at, body, state, escalation_id, note"
    " FROM deliveries WHERE id = ?"
)
COUNT_DELIVERIES = Sql.of("SELECT count(*) AS n FROM deliveries")
# Retention: each pass removes at most `limit` rows per table (one short transaction; the
# caller repeats while a pass was full), oldest first, and only what nothing still needs: a
# delivery whose processing is done, a finished job, and (when configured) an escalation at
# rest, with its timeline, that has no job left to run and nobody needs to look at.
_OLD_DELIVERIES = "SELECT id FROM deliveries WHERE received_at < ? AND state <> 'stored'" \
    " ORDER BY received_at LIMIT ?"
_OLD_JOBS = "SELECT id FROM jobs WHERE state IN ('done', 'dead') AND updated_at < ?" \
    " ORDER BY updated_at LIMIT ?"
_OLD_ESCALATIONS = (
    "SELECT id FROM escalations WHERE updated_at < ? AND attention = 0"
    " AND state IN ('ignored', 'rfh', 'declined', 'closed') AND NOT EXISTS (SELECT 1 FROM jobs"
    " WHERE jobs.escalation_id = escalations.id AND jobs.state IN ('queued', 'running'))"
    " ORDER BY updated_at LIMIT ?"
)
COUNT_OLD = {
    "deliveries": Sql.of(f"SELECT count(*) AS n FROM ({_OLD_DELIVERIES}) AS old"),
    "jobs": Sql.of(f"SELECT count(*) AS n FROM ({_OLD_JOBS}) AS old"),
    "escalations": Sql.of(f"SELECT count(*) AS n FROM ({_OLD_ESCALATIONS}) AS old"),
}
DELETE_OLD_DELIVERIES = Sql.of(f"DELETE FROM deliveries WHERE id IN ({_OLD_DELIVERIES})"
                               " RETURNING id")
DELETE_OLD_JOBS = Sql.of(f"DELETE FROM jobs WHERE id IN ({_OLD_JOBS}) RETURNING id")
# Escalations are chosen once, then each goes with its timeline (which references it).
SELECT_OLD_ESCALATIONS = Sql.of(_OLD_ESCALATIONS)
DELETE_TIMELINE_OF = Sql.of("DELETE FROM timeline WHERE escalation_id = ?")
DELETE_ESCALATION = Sql.of("DELETE FROM escalations WHERE id = ? RETURNING id")
DELETE_EE_WORK_OF = Sql.of("DELETE FROM ee_work WHERE escalation_id = ?")
DELETE_REACHES_OF = Sql.of("DELETE FROM tier2_reaches WHERE escalation_id = ?")
UPSERT_EE_WORK = Sql.of(
    "INSERT INTO ee_work (escalation_id, rotation, opened_at, offered_at, owner, assigned_at,"
    " outcome, engineering, is_open, drill) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (escalation_id) DO UPDATE SET rotation = excluded.rotation,"
    " opened_at = excluded.opened_at, offered_at = excluded.offered_at, owner = excluded.owner,"
    " assigned_at = excluded.assigned_at, outcome = excluded.outcome,"
    " engineering = excluded.engineering, is_open = excluded.is_open, drill = excluded.drill"
)

# `data` is JSON text on both backends: a LIKE finds the candidates, the caller decides.
ESCALATIONS_QUOTING = Sql.of(
    f"SELECT {_ESC_COLUMNS} FROM escalations WHERE data LIKE ? ESCAPE '!' LIMIT ?"
)
FINISH_DELIVERY = Sql.of(
    "UPDATE deliveries SET state = ?, note = ?, escalation_id = ? WHERE id = ?"
)


def job_from(row: Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        key=row["key"],
        payload=json.loads(row["payload"]),
        escalation_id=row["escalation_id"],
        state=JobState(row["state"]),
        run_at=row["run_at"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
        lease_until=row["lease_until"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def escalation_from(row: Row) -> EscalationRow:
    return EscalationRow(
        id=row["id"],
        source=row["source"],
        external_id=row["external_id"],
        state=row["state"],
        outcome=row["outcome"],
        data=json.loads(row["data"]),
        version=row["version"],
        opened_at=row["opened_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        attention=bool(row["attention"]),
        drill=bool(row["drill"]),
        team=row["team"],
    )


PROBE_INSERT = Sql.of(
    "INSERT INTO jobs (kind, key, payload, state, run_at, attempts, last_error, created_at,"
    " updated_at) VALUES ('store_probe', ?, ?, 'done', ?, 0, '', ?, ?) RETURNING id"
)
PROBE_DELETE = Sql.of("DELETE FROM jobs WHERE id = ?")
PROBE_BYTES = 4096  # about a webhook delivery: a store that cannot take this cannot take one


def probe_write(key: str, now: float) -> Unit[None]:
    """Readiness's proof that the store takes writes, which a SELECT does not give: a read-only
    standby, a full disk and another process's lock all answer reads. Inserts a finished job
    row of a delivery's size and deletes it again in the same transaction, so nothing is left
    and no worker can ever see it, yet the commit writes real pages (SQLite: to the WAL)."""
    filler = dumps({"filler": "x" * PROBE_BYTES})
    rows = yield Stmt(PROBE_INSERT, (key, filler, now, now, now))
    yield Stmt(PROBE_DELETE, (rows[0]["id"],))


def ping() -> Unit[int]:
    rows = yield Stmt(PING)
    return int(rows[0]["n"])


def _insert_jobs(jobs: Sequence[NewJob], now: float) -> Unit[int]:
    inserted = 0
    for job in jobs:
        rows = yield Stmt(
            INSERT_JOB,
            (job.kind, job.key, dumps(job.payload), job.escalation_id, job.run_at or now, now, now),
        )
        inserted += len(rows)
    return inserted


def record_delivery(
    source: str,
    delivery_id: str,
    event_type: str,
    body: bytes,
    now: float,
    job_kind: str | None,
    state: DeliveryState = DeliveryState.STORED,
    note: str = "",
) -> Unit[int | None]:
    """Store a webhook delivery and the job (of `job_kind`, key `delivery:<id>`, payload
    {"delivery": <id>}) that will process it, in one statement; None if seen before. A
    delivery decided at the door (`state` other than stored) comes without a job.

    That statement is the whole unit, so the SQLite writer may merge it with its neighbours'
    (`Sql.sqlite_merge`)."""
    rows = yield Stmt(
        INSERT_DELIVERY, (source, delivery_id, event_type, now, body, state.value, note, job_kind))
    return int(rows[0]["id"]) if rows else None


def enqueue(jobs: Sequence[NewJob], now: float) -> Unit[int]:
    return (yield from _insert_jobs(jobs, now))


def claim_jobs(owner: str, now: float, lease_s: float, limit: int) -> Unit[list[Job]]:
    rows = yield Stmt(CLAIM_JOBS, (owner, now + lease_s, now, now, now, limit))
    return sorted((job_from(row) for row in rows), key=lambda job: (job.run_at, job.id))


def extend_lease(job_id: int, owner: str, until: float) -> Unit[bool]:
    rows = yield Stmt(EXTEND_LEASE, (until, job_id, owner))
    return bool(rows)


def _finish(job_id: int, owner: str, state: JobState, run_at: float, error: str, now: float
            ) -> Unit[bool]:
    rows = yield Stmt(FINISH_JOB, (state.value, run_at, error[:2000], now, job_id, owner))
    return bool(rows)


def apply_changes(changes: Changes, now: float) -> Unit[None]:
    esc = changes.escalation
    if esc is not None:
        weekend, decision_criteria = _decided_figures(esc)
        kpi_columns = _kpi_columns(esc)
        if changes.expected_version == 0:
            rows = yield Stmt(
                INSERT_ESCALATION,
                (esc.id, esc.source, esc.external_id, esc.state, esc.outcome, dumps(esc.data),
                 esc.opened_at, now, now, int(esc.attention), int(esc.drill), esc.team,
                 weekend, decision_criteria, *kpi_columns),
            )
        else:
            rows = yield Stmt(
                UPDATE_ESCALATION,
                (esc.state, esc.outcome, dumps(esc.data), esc.opened_at, now,
                 int(esc.attention), esc.team, weekend, decision_criteria, *kpi_columns,
                 esc.id, changes.expected_version),
            )
        if not rows:
            raise Conflict(f"escalation {esc.id} changed concurrently")
    if changes.ee is not None:
        yield from _upsert_ee(changes.ee)
    for event in changes.events:
        yield from _append(event)
    yield from _insert_jobs(changes.jobs, now)
    if changes.delivery_done is not None:
        delivery_id, state, note = changes.delivery_done
        escalation_id = esc.id if esc is not None else None
        yield Stmt(FINISH_DELIVERY, (state.value, note, escalation_id, delivery_id))


def _upsert_ee(work: EEWork) -> Unit[None]:
    yield Stmt(UPSERT_EE_WORK, (
        work.escalation_id, work.rotation, work.opened_at, work.offered_at, work.owner,
        work.assigned_at, work.outcome, int(work.engineering), int(work.open), int(work.drill)))


def _append(event: NewEvent) -> Unit[None]:
    rows = yield Stmt(
        INSERT_EVENT,
        (event.escalation_id, event.at, event.event, event.actor, dumps(event.details),
         event.once_key),
    )
    if not rows:
        if event.once_key is not None:
            raise Duplicate(event.once_key)
        return
    yield from _count_event(event)


# --- the figures kept with each escalation (migration 0011) ------------------------------------
# The report and the dashboard aggregate these columns over a window from one covering index,
# instead of joining every escalation's timeline: they are written here, with the escalation
# and with each timeline entry, and nowhere else (`REFRESH_FIGURES` recomputes them from the
# data and timelines after an import). A new figure that needs a timeline event's first time
# or count gets its column the same way.

REPORT_EVENTS = (EventKind.RECEIVED, EventKind.APPROVAL_REQUESTED, EventKind.APPROVED,
                 EventKind.DECLINED, EventKind.APPROVAL_TIMED_OUT, EventKind.PAGED,
                 EventKind.ACKNOWLEDGED, EventKind.RESOLVED, EventKind.RETRO_OPENED,
                 EventKind.WOULD_HAVE_PAGED)
EMERGENCY = "emergency"  # the policy's outcome value (daemon.domain.policy.Outcome.EMERGENCY)
# Events whose first time each escalation keeps: the report's, and `reopened` for the KPIs'
# "resolved, then reopened" share (`kpi_reads.REOPENS`).
FIRST_EVENTS = (*REPORT_EVENTS, EventKind.REOPENED)
_FIRST_AT = {event: Sql.of(
    f"UPDATE escalations SET first_{event} = CASE WHEN first_{event} IS NULL"
    f" OR first_{event} > ? THEN ? ELSE first_{event} END WHERE id = ?")
    for event in FIRST_EVENTS}
_DEAD_LETTER = Sql.of("UPDATE escalations SET dead_letters = dead_letters + 1 WHERE id = ?")
_EVER_EMERGENCY = Sql.of("UPDATE escalations SET ever_emergency = 1 WHERE id = ?")
_RECORDED_CRITERIA = Sql.of("SELECT recorded_criteria FROM escalations WHERE id = ?")
_SET_RECORDED_CRITERIA = Sql.of("UPDATE escalations SET recorded_criteria = ? WHERE id = ?")


def _decided_figures(esc: EscalationRow) -> tuple[int | None, str]:
    """(decided_weekend, decision_criteria) of an escalation as written: the stored decision's
    weekend flag (None when never decided: the reads judge it by the business calendar) and
    the criteria the decision held, as a sorted JSON array."""
    gate = esc.data.get("gate") or {}
    decision = gate.get("decision") or {}
    facts = decision.get("facts") or {}
    weekend = facts.get("weekend")
    held = sorted(str(name) for name, on in (facts.get("criteria") or {}).items() if on is True)
    return (None if weekend is None else int(bool(weekend))), dumps(held)


def _kpi_columns(esc: EscalationRow) -> tuple[str | None, str, str, str, str]:
    """(customer, custom_fields, reference, title, severity) of an escalation as written
    (migration 0012): the customer as stored (None when absent), the custom fields as a JSON
    object, and the policy's canonical severity of the stored decision ("" when none)."""
    escalation = esc.data.get("escalation") or {}
    facts = ((esc.data.get("gate") or {}).get("decision") or {}).get("facts") or {}
    return (escalation.get("customer"), dumps(escalation.get("fields") or {}),
            _text(escalation.get("reference")), _text(escalation.get("title")),
            _text(facts.get("severity")))


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _number(value: object) -> float | None:
    """A JSON number of a timeline entry's details; anything else counts as absent."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


# The KPIs' columns kept from timeline entries (migration 0012), one statement per entry.
_LAST_RESOLVED = Sql.of(
    "UPDATE escalations SET last_resolved = CASE WHEN last_resolved IS NULL"
    " OR last_resolved < ? THEN ? ELSE last_resolved END WHERE id = ?")
_EVIDENCE = {complete: Sql.of(
    "UPDATE escalations SET evidence_checked = 1"
    + (", evidence_complete = 1" if complete else "") + " WHERE id = ?")
    for complete in (False, True)}
_RETRO_URL = Sql.of(
    "UPDATE escalations SET retro_url = CASE WHEN retro_url IS NULL OR retro_url < ? THEN ?"
    " ELSE retro_url END WHERE id = ?")
_RETRO_CLOSED = {complete: Sql.of(
    "UPDATE escalations SET retro_closed = 1" + (", retro_complete = 1" if complete else "")
    + " WHERE id = ?") for complete in (False, True)}
_SPELL_BEGAN = Sql.of("UPDATE escalations SET spells = spells + 1 WHERE id = ?")
_SPELL_BEGAN_DUE = Sql.of(
    "UPDATE escalations SET spells = spells + 1, last_due_at = CASE WHEN last_due_at IS NULL"
    " OR last_due_at < ? THEN ? ELSE last_due_at END WHERE id = ?")
_SPELL_ENDED = Sql.of(
    "UPDATE escalations SET spells_ended = spells_ended + 1, overdue_s = overdue_s + ?"
    " WHERE id = ?")


def _count_event(event: NewEvent) -> Unit[None]:
    """Keep the escalation's figure columns up to date with one more timeline entry."""
    if event.event in _FIRST_AT:
        yield Stmt(_FIRST_AT[event.event], (event.at, event.at, event.escalation_id))
    elif event.event is EventKind.DEAD_LETTERED:  # counted per entry: one per job that died
        yield Stmt(_DEAD_LETTER, (event.escalation_id,))
    elif event.event is EventKind.CLASSIFIED:
        if event.details.get("outcome") == EMERGENCY:
            yield Stmt(_EVER_EMERGENCY, (event.escalation_id,))
        criteria = event.details.get("criteria")
        if isinstance(criteria, list):
            rows = yield Stmt(_RECORDED_CRITERIA, (event.escalation_id,))
            before = rows[0]["recorded_criteria"] if rows else None
            union = set(json.loads(before)) if before else set()
            union.update(str(name) for name in criteria)
            yield Stmt(_SET_RECORDED_CRITERIA, (dumps(sorted(union)), event.escalation_id))
    yield from _count_kpi_event(event)
    yield from _count_load_event(event)


def _count_kpi_event(event: NewEvent) -> Unit[None]:
    """The KPIs' columns (migration 0012) for one more timeline entry; the evidence pack is
    what the approval request showed (`approval_requested` details, `evidence`)."""
    details, esc_id = event.details, event.escalation_id
    if event.event is EventKind.RESOLVED:
        yield Stmt(_LAST_RESOLVED, (event.at, event.at, esc_id))
    elif event.event is EventKind.APPROVAL_REQUESTED and "evidence" in details:
        evidence = details["evidence"]
        complete = isinstance(evidence, dict) and evidence.get("complete") is True
        yield Stmt(_EVIDENCE[complete], (esc_id,))
    elif event.event is EventKind.RETRO_OPENED and details.get("url") is not None:
        url = str(details["url"])
        yield Stmt(_RETRO_URL, (url, url, esc_id))
    elif event.event is EventKind.RETRO_CLOSED:
        yield Stmt(_RETRO_CLOSED[details.get("complete") is True], (esc_id,))
    elif event.event is EventKind.UPDATE_OVERDUE:
        due = _number(details.get("due_at"))
        yield (Stmt(_SPELL_BEGAN, (esc_id,)) if due is None
               else Stmt(_SPELL_BEGAN_DUE, (due, due, esc_id)))
    elif event.event is EventKind.UPDATE_RESUMED:
        yield Stmt(_SPELL_ENDED, (_number(details.get("overdue_s")) or 0.0, esc_id))


# --- the Tier 2 load's facts (migration 0014) ----------------------------------------------------
_PAGE_NAMES = ", ".join(f"'{event}'" for event in PAGE_EVENTS)
_PAGE_ENTRIES_OF = Sql.of(
    "SELECT id, escalation_id, at, event, actor, details FROM timeline"
    f" WHERE escalation_id = ? AND event IN ({_PAGE_NAMES}) ORDER BY at, id")
_INSERT_REACH = Sql.of(
    "INSERT INTO tier2_reaches (escalation_id, page, responder_id, responder, time_zone, at,"
    " acknowledged_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
_APPROVAL_HELD = Sql.of("UPDATE escalations SET approval_held = 1 WHERE id = ?")
_REACHES_DUE = Sql.of("SELECT id FROM escalations WHERE reaches_due = 1 ORDER BY id LIMIT ?",
                      "SELECT id FROM escalations WHERE reaches_due = 1 ORDER BY id LIMIT ?"
                      " FOR UPDATE SKIP LOCKED")
_REACHES_DONE = Sql.of("UPDATE escalations SET reaches_due = 0 WHERE id = ?")
HOLD = "hold"  # an approval timeout's fallback that holds the page (`OnTimeout.HOLD`)


def _count_load_event(event: NewEvent) -> Unit[None]:
    """The load's facts for one more timeline entry: a page entry rewrites who the
    escalation's pages reached (a handful of entries, read by `timeline_first`); a timeout
    that held the page marks it, for the avoided pages."""
    if event.event in PAGE_EVENTS:
        yield from _refresh_reaches(event.escalation_id)
    elif event.event is EventKind.APPROVAL_TIMED_OUT and event.details.get("fallback") == HOLD:
        yield Stmt(_APPROVAL_HELD, (event.escalation_id,))


def _refresh_reaches(escalation_id: str) -> Unit[None]:
    rows = yield Stmt(_PAGE_ENTRIES_OF, (escalation_id,))
    entries = [TimelineEntry(id=row["id"], escalation_id=row["escalation_id"], at=row["at"],
                             event=EventKind(row["event"]), actor=row["actor"],
                             details=json.loads(row["details"])) for row in rows]
    yield Stmt(DELETE_REACHES_OF, (escalation_id,))
    for reach in reaches(entries):
        yield Stmt(_INSERT_REACH, (reach.escalation_id, reach.page, reach.responder_id,
                                   reach.responder, reach.time_zone, reach.at,
                                   reach.acknowledged_at))


def refresh_due_reaches(limit: int) -> Unit[int]:
    """Compute `tier2_reaches` for up to `limit` escalations marked `reaches_due` (by
    migration 0014 or an import) and clear the mark; returns how many were done (0: none is
    left). Replicas opening together on PostgreSQL each take other escalations."""
    due = yield Stmt(_REACHES_DUE, (limit,))
    for row in due:
        yield from _refresh_reaches(row["id"])
        yield Stmt(_REACHES_DONE, (row["id"],))
    return len(due)


def complete_job(job_id: int, owner: str, now: float, changes: Changes | None) -> Unit[bool]:
    """Mark the job done together with what it decided; nothing is written if the lease is lost."""
    done = yield from _finish(job_id, owner, JobState.DONE, now, "", now)
    if done and changes is not None:
        yield from apply_changes(changes, now)
    return done


def retry_job(job_id: int, owner: str, run_at: float, error: str, now: float) -> Unit[bool]:
    return (yield from _finish(job_id, owner, JobState.QUEUED, run_at, error, now))


def dead_letter_job(job_id: int, owner: str, error: str, now: float,
                    event: NewEvent | None, follow_up: NewJob | None = None) -> Unit[bool]:
    """Give up on a job; `follow_up` (telling people about it) is queued in the same commit."""
    dead = yield from _finish(job_id, owner, JobState.DEAD, now, error, now)
    if dead and event is not None:
        yield from _append(event)
    if dead and follow_up is not None:
        yield from _insert_jobs((follow_up,), now)
    return dead


def release_jobs(owner: str, now: float) -> Unit[int]:
    rows = yield Stmt(RELEASE_JOBS, (now, owner))
    return len(rows)


def release_orphans(now: float) -> Unit[int]:
    rows = yield Stmt(RELEASE_ORPHANS, (now,))
    return len(rows)


def next_due() -> Unit[float | None]:
    rows = yield Stmt(NEXT_DUE)
    return rows[0]["at"] if rows else None


def job_counts() -> Unit[dict[str, int]]:
    rows = yield Stmt(JOB_COUNTS)
    return {row["state"]: int(row["n"]) for row in rows}


def get_job(job_id: int) -> Unit[Job | None]:
    rows = yield Stmt(GET_JOB, (job_id,))
    return job_from(rows[0]) if rows else None


def list_jobs(state: JobState, limit: int) -> Unit[list[Job]]:
    rows = yield Stmt(LIST_JOBS, (state.value, limit))
    return [job_from(row) for row in rows]


def get_escalation(escalation_id: str) -> Unit[EscalationRow | None]:
    rows = yield Stmt(GET_ESCALATION, (escalation_id,))
    return escalation_from(rows[0]) if rows else None


def escalations_quoting(value: str, limit: int) -> Unit[list[EscalationRow]]:
    """Escalations whose stored data holds `value` as a JSON string, anywhere."""
    escaped = re.sub(r"[!%_]", lambda m: "!" + m.group(), dumps(value))
    rows = yield Stmt(ESCALATIONS_QUOTING, (f"%{escaped}%", limit))
    return [escalation_from(row) for row in rows]


def prune(deliveries_before: float, jobs_before: float, escalations_before: float | None,
          limit: int, dry_run: bool) -> Unit[dict[str, int]]:
    """One retention pass: rows removed (or, `dry_run`, that would be) per table, each at most
    `limit`. `escalations_before` None keeps every escalation and its timeline."""
    found: dict[str, int] = {}
    cutoffs = {"deliveries": deliveries_before, "jobs": jobs_before}
    if escalations_before is not None:
        cutoffs["escalations"] = escalations_before
    if dry_run:
        for table, before in cutoffs.items():
            rows = yield Stmt(COUNT_OLD[table], (before, limit))
            found[table] = int(rows[0]["n"])
        return found
    rows = yield Stmt(DELETE_OLD_DELIVERIES, (deliveries_before, limit))
    found["deliveries"] = len(rows)
    rows = yield Stmt(DELETE_OLD_JOBS, (jobs_before, limit))
    found["jobs"] = len(rows)
    if escalations_before is not None:
        ids = yield Stmt(SELECT_OLD_ESCALATIONS, (escalations_before, limit))
        for row in ids:
            yield Stmt(DELETE_TIMELINE_OF, (row["id"],))
            yield Stmt(DELETE_EE_WORK_OF, (row["id"],))
            yield Stmt(DELETE_REACHES_OF, (row["id"],))
            yield Stmt(DELETE_ESCALATION, (row["id"],))
        found["escalations"] = len(ids)
    return found


def find_escalation(source: str, external_id: str) -> Unit[EscalationRow | None]:
    rows = yield Stmt(FIND_ESCALATION, (source, external_id))
    return escalation_from(rows[0]) if rows else None


def needing_attention(limit: int) -> Unit[list[EscalationRow]]:
    rows = yield Stmt(NEEDING_ATTENTION, (limit,))
    return [escalation_from(row) for row in rows]


def count_needing_attention() -> Unit[int]:
    rows = yield Stmt(COUNT_NEEDING_ATTENTION)
    return int(rows[0]["n"])


def list_escalations(since: float, limit: int) -> Unit[list[EscalationRow]]:
    rows = yield Stmt(LIST_ESCALATIONS, (since, limit))
    return [escalation_from(row) for row in rows]


def escalations_in(states: Sequence[str], limit: int) -> Unit[list[EscalationRow]]:
    found: list[EscalationRow] = []
    for state in states:  # one fixed statement per state, rather than SQL built at run time
        rows = yield Stmt(ESCALATIONS_IN, (state, limit))
        found += [escalation_from(row) for row in rows]
    return found


def timeline(escalation_id: str) -> Unit[list[TimelineEntry]]:
    rows = yield Stmt(TIMELINE, (escalation_id,))
    return [
        TimelineEntry(
            id=row["id"], escalation_id=row["escalation_id"], at=row["at"],
            event=EventKind(row["event"]),
            actor=row["actor"], details=json.loads(row["details"]),
        )
        for row in rows
    ]


def get_delivery(row_id: int) -> Unit[Delivery | None]:
    rows = yield Stmt(GET_DELIVERY, (row_id,))
    if not rows:
        return None
    row = rows[0]
    return Delivery(
        id=row["id"], source=row["source"], delivery_id=row["delivery_id"],
        event_type=row["event_type"], received_at=row["received_at"], body=bytes(row["body"]),
        state=DeliveryState(row["state"]), escalation_id=row["escalation_id"], note=row["note"],
    )


def count_deliveries() -> Unit[int]:
    rows = yield Stmt(COUNT_DELIVERIES)
    return int(rows[0]["n"])

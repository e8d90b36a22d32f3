"""The durable store: escalations, their timeline, webhook deliveries and jobs.

`Store` is the one backend-neutral interface; `SqliteBackend` (default, one node) and
`PostgresBackend` (several replicas) only know how to run a unit of SQL in a transaction.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import structlog

from daemon.clock import Clock, SystemClock, iso
from daemon.store import ee_reads, followthrough, kpi_reads, load_reads, reads, units
from daemon.store.mapping import Loaded, loaded
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
    Outage,
    StoreError,
    StoreUnavailable,
    TimelineEntry,
)

__all__ = [
    "Changes", "Conflict", "Delivery", "DeliveryState", "Duplicate", "EEWork", "EscalationRow",
    "Job",
    "JobState", "NewEvent", "NewJob", "Outage", "Store", "StoreError", "StoreUnavailable",
    "TimelineEntry", "Trouble", "open_store",
]

T = TypeVar("T")
_REACHES_BATCH = 500  # escalations per transaction while computing the load's facts at open
_COUNT_ALL = 2**62  # a dry run counts everything at once: it changes nothing, holds nothing

# structlog's own logger, the one `daemon.logging.get_logger` returns: that module imports
# aiohttp (its access log), which `report` would otherwise load for nothing (~0.1 s).
log: structlog.typing.FilteringBoundLogger = structlog.get_logger("tier2gate.store")


@dataclass(frozen=True)
class Trouble:
    """The store's current outage: what the last failed call said, and since when it fails."""

    kind: Outage
    reason: str
    since: float


class Backend(Protocol):
    dialect: str
    single_node: bool

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def run(self, factory: units.UnitFactory[Any]) -> Any: ...
    def check(self) -> None: ...


class Store:
    """What the daemon may ask of its database. Every method is one transaction."""

    def __init__(self, backend: Backend, clock: Clock | None = None) -> None:
        self.backend = backend
        self.clock = clock or SystemClock()
        self._listeners: list[Callable[[], None]] = []
        self._trouble: Trouble | None = None

    @property
    def trouble(self) -> Trouble | None:
        """The outage under way (None when the last write went through)."""
        return self._trouble

    @property
    def single_node(self) -> bool:
        return self.backend.single_node

    async def open(self) -> None:
        """Open the backend (applying migrations), then compute what a migration or an import
        left due: who the pages of escalations stored before migration 0014 reached."""
        await self.backend.open()
        while await self.backend.run(lambda: units.refresh_due_reaches(_REACHES_BATCH)):
            pass

    async def close(self) -> None:
        await self.backend.close()

    def on_enqueue(self, listener: Callable[[], None]) -> None:
        """Wake in-process workers when this process adds jobs (others find them by polling)."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    async def _run(self, factory: units.UnitFactory[T], *, proves_writes: bool = True) -> T:
        """Run one unit, remembering outages: any failure starts (or continues) one, and only a
        unit that certainly wrote rows ends it (`proves_writes`). Reads still work on a
        read-only standby or a full disk, and so does an UPDATE that matched nothing (a claim
        with no job due), so none of those may end an outage."""
        try:
            result: T = await self.backend.run(factory)
        except StoreUnavailable as exc:
            self._failed(exc)
            raise
        if proves_writes and self._trouble is not None:
            trouble, self._trouble = self._trouble, None
            log.info("store.recovered", kind=trouble.kind.value,
                     outage_s=round(self.clock.now() - trouble.since, 1))
        return result

    def _failed(self, exc: StoreUnavailable) -> None:
        now = self.clock.now()
        if self._trouble is None:
            # One line per outage, not one per request (and never a traceback).
            log.error("store.unavailable", kind=exc.kind.value, error=str(exc))
            self._trouble = Trouble(exc.kind, str(exc), now)
        elif exc.kind is not Outage.TIMEOUT:
            # The latest words of the database; a timeout of ours says less than those it
            # follows ("locked"), so it keeps them.
            self._trouble = Trouble(exc.kind, str(exc), self._trouble.since)

    async def ping(self, timeout_s: float = 2.0) -> None:
        """Readiness: raise StoreUnavailable unless the store takes a write within the timeout.

        A SELECT is not enough: a standby after a failover, a full disk and another process's
        SQLite lock all answer it, while every webhook gets a 503. The message says how long
        the store has been failing."""
        self.backend.check()
        key = f"store-probe:{uuid.uuid4().hex}"
        now = self.clock.now()
        try:
            await asyncio.wait_for(self._run(lambda: units.probe_write(key, now)), timeout_s)
            return
        except TimeoutError:
            self._failed(StoreUnavailable(
                f"the database did not take a write within {timeout_s:g} s", Outage.TIMEOUT))
        except StoreUnavailable:
            pass  # _run recorded it
        trouble = self._trouble
        assert trouble is not None  # recorded just above
        raise StoreUnavailable(f"{trouble.reason} (failing since {iso(trouble.since)})",
                               trouble.kind)

    async def record_delivery(
        self, source: str, delivery_id: str, event_type: str, body: bytes,
        job_kind: str | None = None,
        state: DeliveryState = DeliveryState.STORED, note: str = "",
    ) -> int | None:
        """Durably store a webhook delivery and, given `job_kind`, the job that processes it
        (key `delivery:<id>`, payload {"delivery": <id>}). None = seen before. `state` and
        `note` record a delivery that was decided on arrival (stale)."""
        now = self.clock.now()
        row_id = await self._run(
            lambda: units.record_delivery(source, delivery_id, event_type, body, now, job_kind,
                                          state, note)
        )
        if row_id is not None and job_kind is not None:
            self._notify()
        return row_id

    async def enqueue(self, *jobs: NewJob) -> int:
        """Add jobs; a job whose key exists already is skipped. Returns how many were new."""
        now = self.clock.now()
        added = await self._run(lambda: units.enqueue(jobs, now), proves_writes=False)
        if added:
            self._notify()
        return added

    async def apply(self, changes: Changes) -> None:
        """Write an escalation decision atomically; raises Conflict or Duplicate and writes
        nothing if someone else got there first."""
        now = self.clock.now()
        await self._run(lambda: units.apply_changes(changes, now))
        if changes.jobs:
            self._notify()

    async def claim_jobs(self, owner: str, lease_s: float, limit: int) -> list[Job]:
        now = self.clock.now()
        return await self._run(lambda: units.claim_jobs(owner, now, lease_s, limit),
                               proves_writes=False)

    async def extend_lease(self, job_id: int, owner: str, lease_s: float) -> bool:
        until = self.clock.now() + lease_s
        return await self._run(lambda: units.extend_lease(job_id, owner, until),
                               proves_writes=False)

    async def complete_job(self, job_id: int, owner: str, changes: Changes | None = None
                           ) -> bool:
        now = self.clock.now()
        done = await self._run(lambda: units.complete_job(job_id, owner, now, changes))
        if done and changes is not None and changes.jobs:
            self._notify()
        return done

    async def retry_job(self, job_id: int, owner: str, run_at: float, error: str) -> bool:
        now = self.clock.now()
        return await self._run(lambda: units.retry_job(job_id, owner, run_at, error, now))

    async def dead_letter_job(self, job_id: int, owner: str, error: str,
                              event: NewEvent | None, follow_up: NewJob | None = None) -> bool:
        now = self.clock.now()
        dead = await self._run(
            lambda: units.dead_letter_job(job_id, owner, error, now, event, follow_up))
        if dead and follow_up is not None:
            self._notify()
        return dead

    async def release_jobs(self, owner: str) -> int:
        """Give back this worker's leased jobs (graceful shutdown) without counting an attempt."""
        now = self.clock.now()
        return await self._run(lambda: units.release_jobs(owner, now), proves_writes=False)

    async def release_orphans(self) -> int:
        """Requeue every running job: only safe when this is the one process on the database."""
        now = self.clock.now()
        return await self._run(lambda: units.release_orphans(now), proves_writes=False)

    async def next_due(self) -> float | None:
        return await self._run(units.next_due, proves_writes=False)

    async def job_counts(self) -> dict[str, int]:
        return await self._run(units.job_counts, proves_writes=False)

    async def get_job(self, job_id: int) -> Job | None:
        return await self._run(lambda: units.get_job(job_id), proves_writes=False)

    async def list_jobs(self, state: JobState, limit: int = 100) -> list[Job]:
        return await self._run(lambda: units.list_jobs(state, limit), proves_writes=False)

    async def get_escalation(self, escalation_id: str) -> EscalationRow | None:
        return await self._run(lambda: units.get_escalation(escalation_id), proves_writes=False)

    async def load_escalation(self, escalation_id: str) -> Loaded | None:
        """The escalation as its domain objects (`mapping.Loaded`); None when it is unknown."""
        row = await self.get_escalation(escalation_id)
        return loaded(row) if row else None

    async def find_escalation(self, source: str, external_id: str) -> EscalationRow | None:
        return await self._run(lambda: units.find_escalation(source, external_id),
                               proves_writes=False)

    async def load_by_source(self, source: str, external_id: str) -> Loaded | None:
        """`find_escalation` as domain objects."""
        row = await self.find_escalation(source, external_id)
        return loaded(row) if row else None

    async def prune(self, deliveries_before: float, jobs_before: float,
                    escalations_before: float | None = None, *, dry_run: bool = False,
                    batch: int = 1000) -> dict[str, int]:
        """Remove (or, `dry_run`, count) what retention lets go, older than each cutoff (epoch
        seconds): processed webhook bodies, finished jobs and, only when a cutoff is given,
        escalations at rest with their timelines. In batches of short transactions, so the
        daemon's own writes are never held up for long."""
        total: dict[str, int] = {}
        limit = _COUNT_ALL if dry_run else batch
        while True:
            found = await self._run(lambda: units.prune(
                deliveries_before, jobs_before, escalations_before, limit, dry_run))
            for table, n in found.items():
                total[table] = total.get(table, 0) + n
            if dry_run or max(found.values()) < batch:
                return total

    async def escalations_quoting(self, value: str, limit: int = 20) -> list[EscalationRow]:
        """Escalations whose data holds the string `value` (e.g. a Slack message ts): a scan
        of the table, for rare checks only (a click on a message nobody recorded)."""
        return await self._run(lambda: units.escalations_quoting(value, limit))

    async def load_quoting(self, value: str) -> list[Loaded]:
        """`escalations_quoting` as domain objects."""
        return [loaded(row) for row in await self.escalations_quoting(value)]

    async def list_escalations(self, since: float = 0.0, limit: int = 500
                               ) -> list[EscalationRow]:
        return await self._run(lambda: units.list_escalations(since, limit), proves_writes=False)

    async def load_since(self, since: float) -> list[Loaded]:
        """`list_escalations` as domain objects."""
        return [loaded(row) for row in await self.list_escalations(since)]

    async def escalations_in(self, states: Sequence[str], limit: int = 10_000
                             ) -> list[EscalationRow]:
        """Escalations whose phase (the `state` column) is one of `states`, oldest first per
        state: e.g. the open ones, to judge again under a new policy."""
        return await self._run(lambda: units.escalations_in(states, limit))

    async def load_in(self, states: Sequence[str]) -> list[Loaded]:
        """`escalations_in` as domain objects."""
        return [loaded(row) for row in await self.escalations_in(states)]

    async def needing_attention(self, limit: int = 100) -> list[Loaded]:
        """Escalations a person must act on (`Gate.problems`), newest first."""
        rows = await self._run(lambda: units.needing_attention(limit), proves_writes=False)
        return [loaded(row) for row in rows]

    async def count_needing_attention(self) -> int:
        return await self._run(units.count_needing_attention, proves_writes=False)

    async def page_escalations(self, flt: reads.EscalationFilter,
                               after: reads.Cursor | None = None, limit: int = 50
                               ) -> tuple[list[EscalationRow], reads.Cursor | None]:
        """One page of escalations, newest first, strictly after `after`; and the cursor of
        the next page (None on the last)."""
        return await self._run(lambda: reads.page_escalations(flt, after, limit),
                               proves_writes=False)

    async def load_page(self, flt: reads.EscalationFilter, after: reads.Cursor | None = None,
                        limit: int = 50) -> tuple[list[Loaded], reads.Cursor | None]:
        """`page_escalations` as domain objects."""
        rows, cursor = await self.page_escalations(flt, after, limit)
        return [loaded(row) for row in rows], cursor

    async def timelines(self, escalation_ids: Sequence[str]) -> dict[str, list[TimelineEntry]]:
        """The timelines of a few escalations (a page), in one transaction."""
        return await self._run(lambda: reads.timelines(escalation_ids), proves_writes=False)

    async def report_figures(self, since: float, until: float, zone: str = "UTC",
                             weekend: str = "67", team: str | None = None) -> reads.Figures:
        """The report's aggregates over escalations opened in [since, until), of one team
        when given; `zone` and `weekend` (ISO weekday digits) judge the weekend of an
        escalation never decided."""
        return await self._run(lambda: reads.report_figures(since, until, zone, weekend, team),
                               proves_writes=False)

    async def load_facts(self, since: float, until: float, *, pages_only: bool = False
                         ) -> load_reads.LoadFacts:
        """What the Tier 2 load figures are made of (`daemon.reporting.load`), dated in
        [since, until): the responders the pages reached, the avoided pages and the SMOC's
        decisions; `pages_only`: the responders alone (the approval request's figures)."""
        return await self._run(
            lambda: load_reads.load_facts(since, until, pages_only=pages_only),
            proves_writes=False)

    async def figures_with_teams(self, since: float, until: float, zone: str = "UTC",
                                 weekend: str = "67"
                                 ) -> tuple[reads.Figures, dict[str, reads.Figures]]:
        """The report's aggregates over escalations opened in [since, until), whole and per
        Tier 1 team, in one transaction; `zone` and `weekend` as for `report_figures`."""
        return await self._run(lambda: reads.figures_with_teams(since, until, zone, weekend),
                               proves_writes=False)

    async def kpi_figures(self, since: float, until: float, service_fields: Sequence[str] = ()
                          ) -> kpi_reads.KpiFigures:
        """The escalation KPIs' figures over escalations opened in [since, until)."""
        sqlite = self.backend.dialect == "sqlite"
        return await self._run(
            lambda: kpi_reads.kpi_figures(since, until, service_fields, sqlite=sqlite),
            proves_writes=False)

    async def open_retros(self, after: str = "", limit: int = 50,
                          closed_since: float = math.inf
                          ) -> list[tuple[str, float, float | None]]:
        """(escalation id, retro opened at, seen closed at) of the retros still followed, by id
        after `after`: one batch of the retro poll. Not yet seen closed, or seen closed with
        a section empty at or after `closed_since` (default: none of those)."""
        return await self._run(lambda: followthrough.open_retros(
            after, limit, min(closed_since, followthrough.FAR_FUTURE_S)), proves_writes=False)

    async def paged_escalation(self, incident_id: str) -> str | None:
        """The escalation whose Tier 2 page is the PagerDuty incident `incident_id`."""
        return await self._run(lambda: followthrough.paged_escalation(incident_id),
                               proves_writes=False)

    async def open_quiet(self, limit: int = 1000) -> list[str]:
        """Escalations whose latest quiet spell (no update past the cadence) has not ended."""
        return await self._run(lambda: followthrough.open_quiet(limit), proves_writes=False)
    async def ee_window(self, since: float, until: float) -> ee_reads.EEWindow:
        """The EE-offered escalations opened in [since, until) (drills left out)."""
        return await self._run(lambda: ee_reads.ee_window(since, until), proves_writes=False)

    async def ee_open_per_owner(self) -> dict[str, int]:
        """Open escalations per owning EE (chat user id), now."""
        return await self._run(ee_reads.open_per_owner, proves_writes=False)

    async def ee_open_owned_by(self, owners: Sequence[str]
                               ) -> list[tuple[str, EscalationRow]]:
        """Every open escalation these EEs own: the rotation handoff's list."""
        return await self._run(lambda: ee_reads.open_owned_by(owners), proves_writes=False)

    async def load_owned_by(self, owners: Sequence[str]) -> list[tuple[str, Loaded]]:
        """`ee_open_owned_by` as domain objects."""
        return [(owner, loaded(row)) for owner, row in await self.ee_open_owned_by(owners)]

    async def timeline(self, escalation_id: str) -> list[TimelineEntry]:
        return await self._run(lambda: units.timeline(escalation_id), proves_writes=False)

    async def get_delivery(self, row_id: int) -> Delivery | None:
        return await self._run(lambda: units.get_delivery(row_id), proves_writes=False)

    async def count_deliveries(self) -> int:
        return await self._run(units.count_deliveries, proves_writes=False)


def open_store(database_url: str, clock: Clock | None = None, *, daemon: bool = False) -> Store:
    """A Store for the URL (not yet opened). SQLite paths are relative to the working dir.

    `daemon`: this process runs the workers (on SQLite it then takes the file exclusively)."""
    if database_url.startswith("sqlite:///"):
        from daemon.store.sqlite import SqliteBackend

        path = Path(database_url.removeprefix("sqlite:///"))
        return Store(SqliteBackend(path, exclusive=daemon), clock)
    if database_url.startswith(("postgresql://", "postgres://")):
        from daemon.store.postgres import PostgresBackend

        return Store(PostgresBackend(database_url), clock)
    raise ValueError("database_url must start with sqlite:/// or postgresql://")


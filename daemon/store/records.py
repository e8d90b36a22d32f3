"""What the store holds, as plain frozen records. No SQL here, no vendor shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from daemon.domain.events import EventKind, Fact, details_of
from daemon.domain.teams import DEFAULT_TEAM


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class DeliveryState(StrEnum):
    STORED = "stored"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"
    STALE = "stale"  # too old to act on: recorded so a replay is seen, never processed


@dataclass(frozen=True)
class NewJob:
    """A side effect to perform. `key` makes enqueueing idempotent: a second enqueue is a no-op."""

    kind: str
    key: str
    payload: dict[str, Any] = field(default_factory=dict)
    run_at: float = 0.0
    escalation_id: str | None = None


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    escalation_id: str | None
    state: JobState
    run_at: float
    attempts: int
    last_error: str
    lease_owner: str | None
    lease_until: float | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class NewEvent:
    """A timeline entry to append. `once_key` makes it happen at most once per escalation
    (a decision, a page, a retro): a second append with the same key aborts the whole change."""

    escalation_id: str
    event: EventKind
    actor: str
    at: float
    details: dict[str, Any] = field(default_factory=dict)
    once_key: str | None = None

    @classmethod
    def of(cls, escalation_id: str, fact: Fact, actor: str, at: float,
           once_key: str | None = None) -> NewEvent:
        """The entry recording `fact` (its kind, its details as stored)."""
        return cls(escalation_id, fact.kind, actor, at, fact.stored(), once_key)


@dataclass(frozen=True)
class TimelineEntry:
    id: int
    escalation_id: str
    at: float
    event: EventKind
    actor: str
    details: dict[str, Any]

    @property
    def fact(self) -> Fact:
        """The entry's typed details (`daemon.domain.events`)."""
        return details_of(self.event, self.details)


@dataclass(frozen=True)
class EscalationRow:
    """An escalation as stored: key columns for queries, the rest in `data`.

    `version` is the optimistic-concurrency counter: writes name the version they read.
    """

    id: str
    source: str
    external_id: str
    state: str
    outcome: str | None
    data: dict[str, Any]
    version: int
    opened_at: float
    created_at: float
    updated_at: float
    attention: bool = False  # a person must act (see `Gate.problems`)
    drill: bool = False  # a rehearsal (`tier2gate drill`): left out of every figure and list
    team: str = DEFAULT_TEAM  # the Tier 1 team (`Gate.team`)


@dataclass(frozen=True)
class Delivery:
    id: int
    source: str
    delivery_id: str
    event_type: str
    received_at: float
    body: bytes
    state: DeliveryState
    escalation_id: str | None
    note: str


@dataclass(frozen=True)
class EEWork:
    """An escalation's Escalation Engineer step as the figures read it (table `ee_work`).

    `engineering`: it reached Engineering (the EE asked for it, nobody took it in time, or
    Tier 2 was paged); `open`: an EE owns it and it is not over (the handoff lists it)."""

    escalation_id: str
    rotation: str
    opened_at: float
    offered_at: float
    owner: str = ""
    assigned_at: float | None = None
    outcome: str = ""
    engineering: bool = False
    open: bool = False
    drill: bool = False


@dataclass(frozen=True)
class Changes:
    """Everything one decision writes, applied atomically (or not at all).

    `escalation` is written only if the stored version still equals `expected_version`
    (0 = must not exist yet); otherwise the whole change fails with `Conflict`.
    """

    escalation: EscalationRow | None = None
    expected_version: int = 0
    events: tuple[NewEvent, ...] = ()
    jobs: tuple[NewJob, ...] = ()
    delivery_done: tuple[int, DeliveryState, str] | None = None
    ee: EEWork | None = None  # written with the escalation, in the same transaction


class StoreError(Exception):
    """Base of the store's own errors."""


class Outage(StrEnum):
    """Why the store cannot take writes now. Each is a 503 for a sender and a red `/readyz`;
    none is the request's fault, so none is ever a 500."""

    READ_ONLY = "read-only"  # a standby after a failover, a read-only mount or file
    DISK_FULL = "disk full"
    LOCKED = "locked"  # another process holds the SQLite write lock
    UNREACHABLE = "unreachable"  # connection refused or dropped, the server shutting down
    TIMEOUT = "no answer in time"
    UNAVAILABLE = "unavailable"  # any other "not now" answer (e.g. too many connections)


HINTS: dict[Outage, str] = {
    Outage.READ_ONLY: "point database_url at a writable primary (after a failover: the new "
                      "primary) or make the file and its folder writable",
    Outage.DISK_FULL: "free space on the database's disk",
    Outage.LOCKED: "find the process holding the database (fuser/lsof) and end its transaction",
}


class StoreUnavailable(StoreError):
    """The database cannot take this request now (see `Outage`); the caller answers 503.

    The message names the store (backend and where), the kind and the database's own words."""

    def __init__(self, message: str, kind: Outage = Outage.UNAVAILABLE) -> None:
        super().__init__(message)
        self.kind = kind


class Conflict(StoreError):
    """Someone else changed the escalation first; re-read and decide again."""


class Duplicate(StoreError):
    """A once-only timeline event already exists: the thing it records has already happened."""

    def __init__(self, once_key: str) -> None:
        super().__init__(f"already recorded: {once_key}")
        self.once_key = once_key


def unavailable(backend: str, where: str, kind: Outage, detail: str) -> StoreUnavailable:
    """The one wording of a store outage, e.g. "SQLite unavailable (disk full) at var/t.db:
    database or disk is full; free space on the database's disk"."""
    hint = HINTS.get(kind)
    return StoreUnavailable(
        f"{backend} unavailable ({kind}) at {where}: {detail}" + (f"; {hint}" if hint else ""),
        kind)

"""Customer events: maintenance windows, upgrades, migrations and launches Tier 2 should know of.

A customer's migration weekend changes what an escalation means: the SMOC sees it on the
approval request, a policy rule can make an S2 during it an emergency (`customer_event_active`),
and Tier 2 hears on Friday what the weekend holds. The calendar is read from files or a URL by
`daemon.customer_calendar`; here it is plain data and pure questions about it, with the clock
passed in.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


def customer_key(name: str) -> str:
    """A customer's name as compared: without case, with any run of spaces (a no-break space
    pasted from a web page too) as one, and compatibility forms (a fullwidth letter) as their
    plain letter. The incident's Customer field and the calendar are typed in different tools
    by different people."""
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


class EventKind(StrEnum):
    """What kind of event: the words Tier 2 reads in the heads-up and the approval request."""

    MAINTENANCE = "maintenance"
    UPGRADE = "upgrade"
    MIGRATION = "migration"
    LAUNCH = "launch"
    OTHER = "other"


class CustomerEvent(BaseModel):
    """One event of one customer, [start, end). Customer and summary are untrusted text (they
    come from a calendar anyone with access may edit): escape them where they are written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer: Annotated[str, Field(min_length=1, max_length=200)]
    summary: Annotated[str, Field(max_length=500)] = ""
    kind: EventKind = EventKind.OTHER
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def concerns(self, customer: str) -> bool:
        """Whether this event is `customer`'s (see `customer_key`)."""
        key = customer_key(customer)
        return bool(key) and customer_key(self.customer) == key

    def overlaps(self, since: datetime, until: datetime) -> bool:
        """Whether any part of the event falls in [since, until)."""
        return self.start < until and since < self.end

    def in_progress(self, at: datetime) -> bool:
        return self.start <= at < self.end


class EventCalendar(BaseModel):
    """Every known customer event, in start order."""

    model_config = ConfigDict(frozen=True)

    events: tuple[CustomerEvent, ...] = ()

    @cached_property
    def fingerprint(self) -> str:
        """Equal for equal calendars, whatever source they came from."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]

    @classmethod
    def of(cls, events: Iterable[CustomerEvent]) -> EventCalendar:
        """Sorted by start, duplicates (the same event from two sources) dropped."""
        unique = dict.fromkeys(events)
        return cls(events=tuple(sorted(unique, key=lambda e: (e.start, e.customer.casefold()))))

    def in_progress(self, customer: str, at: datetime) -> tuple[CustomerEvent, ...]:
        """`customer`'s events under way at `at`."""
        return tuple(e for e in self.events if e.concerns(customer) and e.in_progress(at))

    def next_change(self, customer: str, at: datetime) -> datetime | None:
        """When, after `at`, one of `customer`'s events next starts or ends: the first moment
        `in_progress` could answer otherwise. None when nothing is ahead."""
        moments = [moment for e in self.events if e.concerns(customer)
                   for moment in (e.start, e.end) if moment > at]
        return min(moments, default=None)

    def between(self, since: datetime, until: datetime) -> tuple[CustomerEvent, ...]:
        """Events that overlap [since, until), in start order."""
        return tuple(e for e in self.events if e.overlaps(since, until))

    def by_customer(self, since: datetime, until: datetime
                    ) -> dict[str, tuple[CustomerEvent, ...]]:
        """Events overlapping [since, until) per customer (as first written), customers sorted
        by name without case."""
        grouped: dict[str, list[CustomerEvent]] = {}
        names: dict[str, str] = {}
        for event in self.between(since, until):
            key = customer_key(event.customer)
            names.setdefault(key, event.customer.strip())
            grouped.setdefault(key, []).append(event)
        return {names[key]: tuple(grouped[key]) for key in sorted(grouped)}

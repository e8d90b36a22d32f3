"""The emergency-criteria policy: which escalations may page Tier 2, which become RFHs.

The policy is data (config/policy.yaml) so that the program's criteria change by review of a
file, not by a deploy. Evaluation is a pure function of (policy, escalation, now): the caller
owns the clock, and gets back `recheck_at` when only time stands between an escalation and a
different outcome, so that it can set a durable timer instead of polling.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import PurePosixPath
from typing import Annotated, Any, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from daemon.domain.calendar import BusinessHours, require_aware
from daemon.domain.customer_events import CustomerEvent, EventCalendar
from daemon.domain.models import CHAT_USER_ID, Criterion, Escalation, Source, Status
from daemon.domain.teams import DEFAULT_TEAM, TEAM_NAME, Recognition, recognise

Loc = tuple[int | str, ...]
Matched = dict[str, str | bool | float | list[str]]


class Misplaced(ValueError):
    """A cross-field check that knows which item it is about.

    Pydantic reports errors raised in a model validator at the model itself; carrying the
    location lets the policy loader point at the rule's line instead of the top of the file.
    """

    def __init__(self, problems: Iterable[tuple[Loc, str]]) -> None:
        self.problems = tuple(problems)
        text = "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in self.problems)
        super().__init__(text)


class Outcome(StrEnum):
    """What the daemon does with an escalation."""

    EMERGENCY = "emergency"  # ask the SMOC, page Tier 2 once approved
    RFH = "rfh"  # request for help: an issue due next business hours, no page
    IGNORE = "ignore"  # nothing, e.g. test incidents


class OnTimeout(StrEnum):
    """What an unanswered approval request turns into: the program pages rather than waits."""

    PAGE = "page"
    HOLD = "hold"


def _text(value: object) -> object:
    """YAML reads unquoted yes/no/on/off and numbers as non-strings; say so instead of coercing."""
    if not isinstance(value, str):
        raise ValueError(
            f"{value!r} is not text: YAML reads unquoted yes/no/on/off and numbers "
            "as other types, so quote it"
        )
    return value


def _listed(value: object) -> object:
    """Let `source: pagerduty` mean `source: [pagerduty]`: a one-item list is the common case."""
    return [value] if isinstance(value, str) else value


Text = Annotated[str, BeforeValidator(_text)]
Texts = Annotated[tuple[Text, ...], BeforeValidator(_listed), Field(min_length=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Approval(_Frozen):
    """How long the SMOC has to answer; the defaults are the program's (10 and 20 minutes)."""

    remind_after_minutes: float = Field(default=10, gt=0)
    timeout_minutes: float = Field(default=20, gt=0)
    on_timeout: OnTimeout = OnTimeout.PAGE

    @model_validator(mode="after")
    def _remind_first(self) -> Self:
        if self.remind_after_minutes >= self.timeout_minutes:
            raise ValueError("remind_after_minutes must be less than timeout_minutes")
        return self


class EERoute(_Frozen):
    """A rule's Escalation Engineer step: the escalation is offered to the EEs on rotation.

    For an emergency, `wait_minutes` is how long the SMOC's approval request waits for an EE to
    take it and decide (0: the SMOC is asked at once, the EEs are told alongside). The wait is
    bounded and never applies when nobody is on the rotation: an emergency never waits on an
    empty rotation."""

    wait_minutes: float = Field(default=0, ge=0, le=60)


class Approvers(_Frozen):
    """Who may approve, for every emergency (the per-rule `approval` is about timing)."""

    forbid_self_approval: bool = Field(
        default=False,
        description="the approver must not be who declared the escalation (four eyes); when "
                    "allowed, a self-approval is flagged in the message and on the timeline",
    )


class EvidenceItem(_Frozen):
    """One thing Support should hand over with an emergency (the evidence pack): present when
    any of `fields` (custom-field display names in incident.io, PagerDuty, the desks or the
    `/tier2` form, case-insensitive) holds a value that says something."""

    name: Annotated[Text, Field(min_length=1)]
    label: str = Field(default="", description="what the SMOC reads; default: the name")
    fields: Texts

    @property
    def shown(self) -> str:
        return self.label or self.name.replace("_", " ")


EMPTY_VALUES = frozenset({"", "no", "none", "n/a", "na", "-", "unknown", "tbd"})
"""Field values that hand nothing over: a form field answered "n/a" is evidence missing."""


class Fatigue(_Frozen):
    """Tier 2 load that the approval request warns about: at or above a threshold, the message
    says so beside the load of the engineer on call. A warning only: it never blocks a page.
    Counted over the last `window_days`, in the engineer's own time zone; `null` turns a
    warning off."""

    window_days: int = Field(default=7, ge=1, le=90)
    warn_sleep_pages: int | None = Field(
        default=1, ge=1, description="sleep-hour pages (22:00-08:00) in the window")
    warn_weekend_pages: int | None = Field(
        default=2, ge=1, description="pages on the current (or the last) weekend")
    warn_consecutive_weekends: int | None = Field(
        default=2, ge=1, description="weekends in a row with at least one page")

    def warnings(self, sleep_pages: int, weekend_pages: int, weekends_in_a_row: int, *,
                 weekend_now: bool = True) -> tuple[str, ...]:
        """Each threshold reached, in words; `weekend_now` False: asked on a weekday, the
        weekend pages are last weekend's."""
        weekend = "pages this weekend" if weekend_now else "pages last weekend"
        found = []
        for figure, threshold, what in (
                (sleep_pages, self.warn_sleep_pages, "sleep-hour pages"),
                (weekend_pages, self.warn_weekend_pages, weekend),
                (weekends_in_a_row, self.warn_consecutive_weekends, "weekends paged in a row")):
            if threshold is not None and figure >= threshold:
                found.append(f"{what}: {figure} (the policy warns at {threshold})")
        return tuple(found)


class Conditions(_Frozen):
    """Facts a rule requires; all given ones must hold, an omitted one does not matter."""

    source: Annotated[tuple[Source, ...], BeforeValidator(_listed), Field(min_length=1)] | None = (
        None
    )
    severity: Texts | None = Field(default=None, description="canonical severities")
    status: Status | None = None
    any_criteria: Annotated[tuple[Criterion, ...], Field(min_length=1)] | None = None
    all_criteria: Annotated[tuple[Criterion, ...], Field(min_length=1)] | None = None
    customer: Texts | None = Field(default=None, description="case-insensitive")
    labels_any: Texts | None = Field(default=None, description="case-insensitive")
    min_age_minutes: float | None = Field(
        default=None, ge=0, description="the escalation has been open at least this long"
    )
    weekend: bool | None = None
    off_hours: bool | None = None
    test_mode: bool | None = None
    customer_event_active: bool | None = Field(
        default=None, description="the customer has an event (maintenance, migration, ...) "
                                  "in progress, from the customer-events calendar")


class Rule(_Frozen):
    """One line of the program; the first rule whose conditions all hold decides."""

    name: Annotated[Text, Field(min_length=1)]
    when: Conditions = Conditions()
    outcome: Outcome
    reason: str = ""
    runbook: str | None = Field(default=None, description="e.g. runbooks/emergency-page.md")
    approval: Approval | None = None
    ee: EERoute | None = Field(
        default=None, description="offer the escalation to the Escalation Engineers first")

    @model_validator(mode="before")
    @classmethod
    def _default_approval(cls, data: Any) -> Any:
        """Every emergency gets approval timings, so check-config shows the effective ones."""
        if isinstance(data, dict) and data.get("outcome") == Outcome.EMERGENCY:
            return {"approval": {}, **data}
        return data

    @model_validator(mode="after")
    def _approval_only_for_emergencies(self) -> Self:
        if self.approval is not None and self.outcome is not Outcome.EMERGENCY:
            raise Misplaced([(("approval",), "only emergency rules ask for approval")])
        if self.ee is not None and self.outcome is Outcome.IGNORE:
            raise Misplaced([(("ee",), "an ignored escalation is offered to nobody")])
        if self.ee is not None and self.ee.wait_minutes and self.outcome is not Outcome.EMERGENCY:
            raise Misplaced([(("ee", "wait_minutes"), "only an emergency waits for an EE")])
        return self

    @field_validator("runbook")
    @classmethod
    def _inside_runbooks(cls, runbook: str | None) -> str | None:
        """Runbook links are rendered into the chat and issues; a path must not leave runbooks/."""
        if runbook is None:
            return None
        path = PurePosixPath(runbook)
        if (
            "\\" in runbook
            or path.is_absolute()
            or ".." in path.parts
            or len(path.parts) < 2
            or path.parts[0] != "runbooks"
        ):
            raise ValueError(f"{runbook!r} must be a relative path under runbooks/")
        return str(path)


# Ids a team names, by shape: a name where an id belongs (`#support`, an email) is a mistake the
# file can point at, rather than a request posted nowhere at 2 a.m.
_PAGERDUTY_ID = r"^P[A-Z0-9]{2,}$"
_CHANNEL_ID = r"^[CG][A-Z0-9]{2,}$"


class Team(_Frozen):
    """A Tier 1 team (`domain.teams`): how its escalations are recognised, who approves their
    pages and where, and rules of its own, tried before the shared `rules`.

    Every approval key left out is the settings' (`pagerduty.smoc_schedule_id`,
    `approval.smoc_user_id`, `approval.backup_user_ids`, `approval.backup_group_id`,
    `slack.approval_channel`, `slack.rfh_channel`); a team that names its own SMOC (schedule or
    user) replaces both of the settings' SMOC keys, and one that names its own backups (users,
    even none, or group) both of the settings' backup keys.
    """

    name: Annotated[Text, Field(pattern=TEAM_NAME)]
    recognised_by: Recognition = Recognition()
    smoc_schedule_id: Annotated[Text, Field(pattern=_PAGERDUTY_ID)] | None = Field(
        default=None, description="PagerDuty schedule of this team's Support Manager on Call")
    smoc_user_id: Annotated[Text, Field(pattern=f"^{CHAT_USER_ID}$")] | None = Field(
        default=None, description="a fixed approver (chat user id) instead of a schedule")
    backup_user_ids: Annotated[tuple[Annotated[Text, Field(pattern=f"^{CHAT_USER_ID}$")], ...],
                               BeforeValidator(_listed)] | None = None
    backup_group_id: Annotated[Text, Field(pattern=r"^S[A-Z0-9]{2,}$")] | None = Field(
        default=None, description="a chat user group (S…)")
    approval_channel: Annotated[Text, Field(pattern=_CHANNEL_ID)] | None = Field(
        default=None, description="chat channel id (C… or G…)")
    rfh_channel: Annotated[Text, Field(pattern=_CHANNEL_ID)] | None = Field(
        default=None, description="chat channel id (C… or G…)")
    rules: tuple[Rule, ...] = ()


# Recognisers compared as recognition compares them (`domain.teams`): ids as written, names of
# fields, desk groups and brands without case.
_RECOGNISERS = {"pagerduty_services": False, "slack_channels": False, "desk_groups": True,
                "desk_brands": True, "jsm_projects": True}


def _shadowed(team: Team, at: Loc, claimed: dict[tuple[str, ...], str]
              ) -> list[tuple[Loc, str]]:
    """The recognisers of `team` that a team listed before it already has: teams are tried in
    order, so they could never recognise this one. `claimed` collects them as teams go by."""
    problems: list[tuple[Loc, str]] = []

    def claim(key: tuple[str, ...], where: Loc, shown: str) -> None:
        owner = claimed.setdefault(key, team.name)
        if owner != team.name:
            problems.append((where, f"{shown!r} already recognises team {owner!r} (teams are "
                                    "tried in order: it could never recognise this one)"))

    wanted = team.recognised_by
    for field, values in wanted.fields.items():
        for pos, value in enumerate(values):
            claim(("fields", field.strip().casefold(), value.strip().casefold()),
                  (*at, "fields", field, pos), value)
    for name, fold in _RECOGNISERS.items():
        for pos, value in enumerate(getattr(wanted, name)):
            claim((name, value.strip().casefold() if fold else value), (*at, name, pos), value)
    return problems


_IGNORED_IN_SEVERITY = re.compile(r"[\s_-]+")


def _severity_key(name: str) -> str:
    """Make "SEV-1", "sev 1" and "Sev_1" equal: they are the same severity to a human."""
    return _IGNORED_IN_SEVERITY.sub("", name).casefold()


class Policy(_Frozen):
    """The whole emergency-criteria policy, as validated from config/policy.yaml."""

    severity_aliases: dict[Text, Annotated[tuple[Text, ...], BeforeValidator(_listed)]] = Field(
        description="canonical severity -> vendor names; the canonical name always matches"
    )
    criteria_fields: dict[Criterion, Texts] = Field(
        description="criterion -> custom-field display names (case-insensitive)"
    )
    truthy_values: Texts = ("yes", "true", "y", "1", "checked")
    business_hours: BusinessHours = BusinessHours()
    default_outcome: Outcome
    approval: Approvers = Approvers()
    fatigue: Fatigue = Fatigue()
    rules: tuple[Rule, ...] = ()
    update_cadence_minutes: dict[Text, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict,
        description="canonical severity -> minutes an active emergency may go without an update"
    )
    evidence: tuple[EvidenceItem, ...] = ()
    # None (not an empty list) when absent, so that a policy without teams keeps the
    # fingerprint it had before teams existed (see `fingerprint`).
    teams: tuple[Team, ...] | None = Field(
        default=None, description="Tier 1 teams, each recognised, approved and ruled its way")
    default_team: Text | None = Field(
        default=None, description="the team of an escalation no team recognises; unset: the "
                                  "implicit team 'default', approved as the settings say")

    @cached_property
    def fingerprint(self) -> str:
        """Names this policy in timelines and logs: equal for files that differ only in
        comments or layout, so such an edit is not a change of the policy in force. Follow-
        through settings left out are left out of the fingerprint too, so a policy written
        before they existed keeps its name."""
        unset = {name for name in ("update_cadence_minutes", "evidence")
                 if not getattr(self, name)}
        canonical = self.model_dump_json(exclude_none=True, exclude=unset).encode()
        return hashlib.sha256(canonical).hexdigest()[:12]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        owner: dict[str, str] = {}
        for canonical, aliases in self.severity_aliases.items():
            for index, alias in enumerate((canonical, *aliases)):
                other = owner.setdefault(_severity_key(alias), canonical)
                if other != canonical:
                    where = ("severity_aliases", canonical, index - 1 if index else "[key]")
                    problems.append((where, f"severity {alias!r} is already an alias of {other}"))
        problems += self._check_rules(self.rules, ("rules",), set())
        problems += self._check_teams()
        problems.extend(
            (("update_cadence_minutes", name), f"unknown severity {name!r}; known: "
                                               f"{self._severities}")
            for name in self.update_cadence_minutes if name not in self.severity_aliases)
        seen: set[str] = set()
        for index, item in enumerate(self.evidence):
            if item.name in seen:
                problems.append((("evidence", index, "name"),
                                 f"evidence name {item.name!r} is taken"))
            seen.add(item.name)
        if problems:
            raise Misplaced(problems)
        return self

    def _check_rules(self, rules: Iterable[Rule], at: Loc, names: set[str]
                     ) -> list[tuple[Loc, str]]:
        problems: list[tuple[Loc, str]] = []
        for index, rule in enumerate(rules):
            if rule.name in names:
                problems.append(((*at, index, "name"), f"rule name {rule.name!r} is taken"))
            names.add(rule.name)
            problems.extend(self._unknown_references((*at, index, "when"), rule.when))
        return problems

    def _check_teams(self) -> list[tuple[Loc, str]]:
        """Team names are unique, `default_team` names one, and a team's rules are named apart
        from the shared ones (a decision names its rule; the name must say which)."""
        problems: list[tuple[Loc, str]] = []
        seen: set[str] = set()
        shared = {rule.name for rule in self.rules}
        claimed: dict[tuple[str, ...], str] = {}  # a recogniser -> the first team listing it
        for index, team in enumerate(self.teams or ()):
            if team.name in seen:
                problems.append((("teams", index, "name"), f"team name {team.name!r} is taken"))
            seen.add(team.name)
            problems += self._check_rules(team.rules, ("teams", index, "rules"), set(shared))
            problems += _shadowed(team, ("teams", index, "recognised_by"), claimed)
        if self.default_team is not None and self.default_team not in seen | {DEFAULT_TEAM}:
            problems.append((("default_team",), f"no team is named {self.default_team!r}; "
                             f"known: {', '.join(sorted(seen | {DEFAULT_TEAM}))}"))
        return problems

    def team(self, name: str) -> Team | None:
        """The configured team of that name; None for the implicit team (the settings')."""
        return next((team for team in self.teams or () if team.name == name), None)

    def _unknown_references(self, where: Loc, when: Conditions) -> list[tuple[Loc, str]]:
        """Names a rule uses that the policy never defines: such a rule could never match."""
        problems = [
            ((*where, "severity", pos), f"unknown severity {name!r}; known: {self._severities}")
            for pos, name in enumerate(when.severity or ())
            if name not in self.severity_aliases
        ]
        for key, criteria in (
            ("any_criteria", when.any_criteria),
            ("all_criteria", when.all_criteria),
        ):
            problems.extend(
                ((*where, key, pos), f"criteria_fields maps no field to {criterion.value!r}")
                for pos, criterion in enumerate(criteria or ())
                if criterion not in self.criteria_fields
            )
        return problems

    @property
    def _severities(self) -> str:
        return ", ".join(self.severity_aliases)

    def canonical_severity(self, reported: str) -> str | None:
        """The canonical severity for a vendor's severity name, or None when unknown."""
        key = _severity_key(reported)
        for canonical, aliases in self.severity_aliases.items():
            if key in {_severity_key(name) for name in (canonical, *aliases)}:
                return canonical
        return None

    def criteria(self, fields: dict[str, str]) -> dict[Criterion, bool]:
        """Which criteria the escalation's custom fields assert; field names ignore case."""
        values = {
            name.strip().casefold(): value.strip().casefold() for name, value in fields.items()
        }
        truthy = {value.casefold() for value in self.truthy_values}
        return {
            criterion: any(
                values.get(name.strip().casefold()) in truthy
                for name in self.criteria_fields.get(criterion, ())
            )
            for criterion in Criterion
        }


    def cadence_minutes(self, severity: str | None) -> float | None:
        """How long an active emergency of this canonical severity may go without an update;
        None when the policy sets no cadence for it."""
        return self.update_cadence_minutes.get(severity) if severity else None

    def evidence_pack(self, fields: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(present, missing): the labels of the evidence items the escalation's fields hand
        over and of those they do not, in the policy's order."""
        values = {name.strip().casefold(): value.strip().casefold()
                  for name, value in fields.items()}
        present: list[str] = []
        missing: list[str] = []
        for item in self.evidence:
            held = any(values.get(name.strip().casefold(), "") not in EMPTY_VALUES
                       for name in item.fields)
            (present if held else missing).append(item.shown)
        return tuple(present), tuple(missing)


class Facts(_Frozen):
    """Everything the policy derived from an escalation at one instant: the audit trail."""

    source: Source
    status: Status
    severity: str | None = Field(description="canonical, None when the policy does not know it")
    reported_severity: str
    criteria: dict[Criterion, bool]
    customer: str
    labels: tuple[str, ...]
    age_minutes: float
    weekend: bool
    off_hours: bool
    test_mode: bool
    customer_events: tuple[CustomerEvent, ...] = Field(
        default=(), description="the customer's events in progress when judged")

    @property
    def customer_event_active(self) -> bool:
        return bool(self.customer_events)


class Decision(_Frozen):
    """What to do with an escalation and why, as recorded on its timeline."""

    outcome: Outcome
    rule: str | None = Field(description="the rule that decided; None for the default outcome")
    reason: str
    matched: Matched = Field(description="condition -> the fact value that satisfied it")
    facts: Facts
    runbook: str | None = None
    approval: Approval | None = None
    ee: EERoute | None = None  # offered to the Escalation Engineers (see `EERoute`)
    recheck_at: AwareDatetime | None = Field(
        default=None, description="when a time-based rule that decides first could start to match"
    )
    policy: str = Field(default="", description="fingerprint of the policy that decided")
    team: str = Field(default=DEFAULT_TEAM, description="the Tier 1 team the escalation "
                      "belongs to, recognised by the policy's `teams`")


def evaluate(policy: Policy, escalation: Escalation, now: datetime,
             events: EventCalendar | None = None) -> Decision:
    """Classify `escalation` at `now`: the first matching rule wins, else the default outcome.

    `events`: the customer-events calendar; the customer's events in progress at `now` become
    a fact (`customer_events`), shown on the approval request and judged by
    `customer_event_active`."""
    require_aware(now, "now")
    elapsed = max(timedelta(0), now - escalation.created_at)
    hours = policy.business_hours
    facts = Facts(
        source=escalation.source,
        status=escalation.status,
        severity=policy.canonical_severity(escalation.severity),
        reported_severity=escalation.severity,
        criteria=policy.criteria(escalation.fields),
        customer=escalation.customer,
        labels=escalation.labels,
        age_minutes=escalation.age_minutes(now),
        weekend=hours.is_weekend(now),
        off_hours=hours.is_off_hours(now),
        test_mode=escalation.test_mode,
        customer_events=events.in_progress(escalation.customer, now) if events else (),
    )
    recheck: list[datetime] = []
    team_name = recognise(policy.teams or (), escalation, policy.default_team or DEFAULT_TEAM)
    team = policy.team(team_name)
    for rule in (*(team.rules if team else ()), *policy.rules):
        matched, failed = _check(rule.when, facts, elapsed)
        if not failed:
            decision = Decision(
                outcome=rule.outcome,
                rule=rule.name,
                reason=_explain(rule.reason or f"rule {rule.name!r} matched", matched),
                matched=matched,
                facts=facts,
                runbook=rule.runbook,
                approval=rule.approval,
                ee=rule.ee,
                recheck_at=min(recheck, default=None),
                policy=policy.fingerprint,
                team=team_name,
            )
            return _never_page_tests(decision)
        if failed == ["min_age_minutes"] and rule.when.min_age_minutes is not None:
            due = escalation.created_at + timedelta(minutes=rule.when.min_age_minutes)
            recheck.append(due.astimezone(UTC))
        if failed == ["customer_event_active"] and events is not None:
            # The customer's next event starts (or the one under way ends) at a known time.
            change = events.next_change(escalation.customer, now)
            if change is not None:
                recheck.append(change.astimezone(UTC))
    decision = Decision(
        outcome=policy.default_outcome,
        rule=None,
        reason=f"no rule matched: default outcome {policy.default_outcome.value}",
        matched={},
        facts=facts,
        approval=Approval() if policy.default_outcome is Outcome.EMERGENCY else None,
        recheck_at=min(recheck, default=None),
        policy=policy.fingerprint,
        team=team_name,
    )
    return _never_page_tests(decision)


def _check(when: Conditions, facts: Facts, elapsed: timedelta) -> tuple[Matched, list[str]]:
    """The conditions that hold (with the fact that satisfied each) and those that fail."""
    matched: Matched = {}
    failed: list[str] = []

    def judge(name: str, holds: bool, value: str | bool | float | list[str]) -> None:
        if holds:
            matched[name] = value
        else:
            failed.append(name)

    if when.source is not None:
        judge("source", facts.source in when.source, facts.source.value)
    if when.severity is not None:
        judge("severity", facts.severity in when.severity, facts.severity or "")
    if when.status is not None:
        judge("status", facts.status is when.status, facts.status.value)
    if when.any_criteria is not None:
        hits = [c.value for c in when.any_criteria if facts.criteria[c]]
        judge("any_criteria", bool(hits), hits)
    if when.all_criteria is not None:
        hits = [c.value for c in when.all_criteria if facts.criteria[c]]
        judge("all_criteria", len(hits) == len(when.all_criteria), hits)
    if when.customer is not None:
        wanted = {name.casefold() for name in when.customer}
        judge("customer", facts.customer.casefold() in wanted, facts.customer)
    if when.labels_any is not None:
        wanted = {label.casefold() for label in when.labels_any}
        hits = [label for label in facts.labels if label.casefold() in wanted]
        judge("labels_any", bool(hits), hits)
    if when.min_age_minutes is not None:
        holds = elapsed >= timedelta(minutes=when.min_age_minutes)
        judge("min_age_minutes", holds, round(facts.age_minutes, 1))
    for flag in ("weekend", "off_hours", "test_mode", "customer_event_active"):
        expected: bool | None = getattr(when, flag)
        if expected is not None:
            judge(flag, getattr(facts, flag) is expected, expected)
    return matched, failed


def _explain(reason: str, matched: Matched) -> str:
    if not matched:
        return reason
    shown = ", ".join(
        f"{name}={','.join(value) if isinstance(value, list) else value}"
        for name, value in matched.items()
    )
    return f"{reason} ({shown})"


def _never_page_tests(decision: Decision) -> Decision:
    """A test, tutorial or retro incident must never wake Tier 2, whatever the rules say."""
    if not decision.facts.test_mode or decision.outcome is not Outcome.EMERGENCY:
        return decision
    by = f"rule {decision.rule!r}" if decision.rule else "the default outcome"
    return decision.model_copy(
        update={
            "outcome": Outcome.IGNORE,
            "reason": f"test-mode escalation never pages ({by} would have made it an emergency)",
            "runbook": None,
            "approval": None,
            "ee": None,
        }
    )


def reevaluate(
    previous_outcome: Outcome, approval_requested: bool, new_decision: Decision
) -> Decision:
    """Apply the program's one-way door to a fresh decision for an escalation already decided.

    An RFH (or ignored escalation) may become an emergency. An emergency may be downgraded only
    until the SMOC has been asked: after that, facts changing under the SMOC's feet must not
    silently cancel a request a human is looking at. A test-mode decision still wins, because
    a test incident must never page.
    """
    if (
        previous_outcome is not Outcome.EMERGENCY
        or new_decision.outcome is Outcome.EMERGENCY
        or not approval_requested
        or new_decision.facts.test_mode
    ):
        return new_decision
    return new_decision.model_copy(
        update={
            "outcome": Outcome.EMERGENCY,
            "rule": None,
            "reason": (
                f"downgrade to {new_decision.outcome.value} refused: approval was already "
                f"requested (new evaluation: {new_decision.reason})"
            ),
            "matched": {},
            "runbook": None,
            "approval": None,
            "recheck_at": None,
        }
    )

"""The handbook: the policy in force, in words people read (`tier2gate handbook`, admin
`/handbook`, and `docs/handbook.md`, which a test keeps equal to the shipped policy).

It says what Support must set for Tier 2 to be paged, what happens otherwise and when, who
decides, how long they have and what happens when nobody does, and what Tier 2 receives. It is
rendered from the policy and the non-secret settings only, and never from today's date, so the
same files always give the same text.

Text from the policy (rule names, reasons, field names) is written by people: every value is
made literal Markdown (`markup.markdown_literal`) unless it is our own wording (`Words`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from daemon.domain.calendar import WEEKDAYS, BusinessHours
from daemon.domain.policy import Conditions, OnTimeout, Outcome, Policy, Rule, Team
from daemon.domain.teams import DEFAULT_TEAM
from daemon.integrations.slack import criterion_words  # the words the approval request uses
from daemon.jobs.routing import routing
from daemon.markup import markdown_literal
from daemon.settings import Settings

_TEMPLATE = Path(__file__).resolve().parent / "templates" / "handbook.md.j2"
_DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                 "Saturday", "Sunday"), strict=True))
_OUTCOME_WORDS = {
    Outcome.EMERGENCY: "**Emergency**: the SMOC is asked in Slack; Tier 2 is paged once they "
                       "approve",
    Outcome.RFH: "**Request for help**: no page; an issue and a Slack notice, due at the start "
                 "of the next business window",
    Outcome.IGNORE: "**Ignored**: nothing is done",
}


_FLAG_WORDS = {
    ("weekend", True): "it is a weekend day",
    ("weekend", False): "it is not a weekend day",
    ("off_hours", True): "it is outside business hours (evenings, weekends, holidays)",
    ("off_hours", False): "it is within business hours",
    ("test_mode", True): "it is a test, tutorial or retrospective incident",
    ("test_mode", False): "it is a real incident (not a test)",
    ("customer_event_active", True): "the customer has an event in progress (maintenance, "
                                     "upgrade, migration, launch: the customer-events calendar)",
    ("customer_event_active", False): "the customer has no event in progress",
}


class Words(str):
    """Our own Markdown, written as it is (everything else is escaped)."""

    __slots__ = ()


def _literal(value: Any) -> str:
    if isinstance(value, Words):
        return value
    return markdown_literal(str(value))


def _words(items: list[str]) -> str:
    """"a", "a or b", "a, b or c" of escaped values."""
    shown = [f"**{markdown_literal(item)}**" for item in items]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def condition_lines(when: Conditions) -> list[Words]:
    """Each condition of a rule as a sentence; an empty list: the rule matches everything."""
    lines: list[str] = []
    if when.source is not None:
        lines.append(f"it comes from {_words([s.value for s in when.source])}")
    if when.severity is not None:
        lines.append(f"its severity is {_words(list(when.severity))}")
    if when.status is not None:
        lines.append(f"the incident is **{when.status.value}**")
    if when.any_criteria is not None:
        lines.append("Support asserts at least one of: "
                     + ", ".join(markdown_literal(criterion_words(c.value))
                                 for c in when.any_criteria))
    if when.all_criteria is not None:
        lines.append("Support asserts all of: "
                     + ", ".join(markdown_literal(criterion_words(c.value))
                                 for c in when.all_criteria))
    if when.customer is not None:
        lines.append(f"the customer is {_words(list(when.customer))}")
    if when.labels_any is not None:
        lines.append(f"it has a label {_words(list(when.labels_any))}")
    if when.min_age_minutes is not None:
        lines.append(f"it has been open at least **{when.min_age_minutes:g} minutes** "
                     "(checked again on a timer)")
    for name in ("weekend", "off_hours", "test_mode", "customer_event_active"):
        expected = getattr(when, name)
        if expected is not None:
            lines.append(_FLAG_WORDS[name, expected])
    return [Words(line) for line in lines]


@dataclass(frozen=True)
class RuleView:
    number: int
    rule: Rule
    conditions: list[Words]
    outcome: Words
    timing: Words | None
    ee: Words | None


def _timing(rule: Rule) -> Words | None:
    if rule.approval is None:
        return None
    a = rule.approval
    then = ("Tier 2 is paged anyway (the program pages rather than waits)"
            if a.on_timeout is OnTimeout.PAGE else
            "the request stays open and keeps waiting for a decision (hold)")
    return Words(f"The SMOC is reminded after **{a.remind_after_minutes:g} minutes**; with no "
                 f"decision after **{a.timeout_minutes:g} minutes**, {then}.")


def _ee(rule: Rule, settings: Settings) -> Words | None:
    """The rule's Escalation Engineer step in words, when it has one."""
    if rule.ee is None:
        return None
    if rule.outcome is Outcome.EMERGENCY and rule.ee.wait_minutes:
        return Words(f"It is offered to the Escalation Engineers on rotation first: the SMOC's "
                     f"request waits up to **{rule.ee.wait_minutes:g} minutes** for one to take "
                     "it and resolve it without Engineering (never when nobody is on rotation).")
    if rule.outcome is Outcome.EMERGENCY:
        return Words("The Escalation Engineers on rotation are told alongside the SMOC.")
    return Words(f"It is offered to the Escalation Engineers on rotation first; when nobody "
                 f"takes it within **{settings.ee.take_within_minutes:g} minutes** (or nobody "
                 "is on rotation), it goes on as above.")


def _hours(hours: BusinessHours) -> list[Words]:
    lines = []
    for day in WEEKDAYS:
        windows = hours.weekly.on(day)
        shown = ", ".join(str(w) for w in windows) if windows else (
            "weekend" if day in hours.weekend_days else "closed")
        lines.append(Words(f"| {_DAY_NAMES[day]} | {shown} |"))
    return lines


def _holidays(hours: BusinessHours) -> Words:
    parts = []
    if hours.holidays_country:
        where = hours.holidays_country + (f"-{hours.holidays_subdivision}"
                                          if hours.holidays_subdivision else "")
        parts.append(f"the public holidays of **{markdown_literal(where)}** (the `holidays` "
                     "package)")
    if hours.extra_holidays:
        parts.append("company closing days " + ", ".join(d.isoformat()
                                                         for d in hours.extra_holidays))
    return Words(" and ".join(parts) if parts else "none")


def _fatigue(policy: Policy) -> Words:
    """The load thresholds that add a warning to the approval request, in words."""
    fatigue = policy.fatigue
    found = [f"{count} {what}" for count, what in (
        (fatigue.warn_sleep_pages, "sleep-hour page(s) (22:00-08:00)"),
        (fatigue.warn_weekend_pages, "page(s) in one weekend"),
        (fatigue.warn_consecutive_weekends, "weekends in a row with a page"))
        if count is not None]
    return Words(" or ".join(found))


def _smoc_words(schedule_id: str | None, user_id: str | None) -> Words:
    """Who the daemon asks (`jobs.approvers.Approvers.smoc`): a fixed user before a schedule."""
    if user_id:
        return Words(f"the Slack user `{markdown_literal(user_id)}` (the SMOC)")
    if schedule_id:
        return Words(f"whoever is on call on the PagerDuty schedule "
                     f"`{markdown_literal(schedule_id)}` (the SMOC)")
    return Words("nobody is configured as SMOC (pagerduty.smoc_schedule_id or "
                 "approval.smoc_user_id)")


def _backup_words(user_ids: Sequence[str], group_id: str | None) -> Words:
    backups = [f"`{markdown_literal(u)}`" for u in user_ids]
    if group_id:
        backups.append(f"the members of the Slack user group `{markdown_literal(group_id)}`")
    return Words(", ".join(backups) if backups else "none")


def _recognition_words(team: Team) -> Words:
    """How the policy recognises the team's escalations, in words (see `domain.teams`)."""
    seen = team.recognised_by
    found = [f"{markdown_literal(name)} is {' or '.join(markdown_literal(v) for v in values)}"
             for name, values in seen.fields.items()]
    for label, values in (("PagerDuty service", seen.pagerduty_services),
                          ("`/tier2` used in channel", seen.slack_channels),
                          ("Zendesk group", seen.desk_groups),
                          ("Zendesk brand", seen.desk_brands),
                          ("Jira project", seen.jsm_projects)):
        if values:
            found.append(f"{label} {', '.join(f'`{markdown_literal(v)}`' for v in values)}")
    return Words("; ".join(found) if found else "only as the default team")


def _approvers(policy: Policy, settings: Settings) -> list[dict[str, Any]]:
    """Who decides, per Tier 1 team: the implicit team first, then each `teams:` entry with
    the settings filling whatever the team leaves out."""
    pd, approval = settings.pagerduty, settings.approval
    default = policy.default_team or DEFAULT_TEAM
    entries: list[dict[str, Any]] = []
    if policy.team(default) is None:
        entries.append({
            "team": "Every escalation" if not policy.teams else
            f"{default} (escalations no team recognises)",
            "recognised": Words(""),
            "smoc": _smoc_words(pd.smoc_schedule_id, approval.smoc_user_id),
            "backups": _backup_words(approval.backup_user_ids, approval.backup_group_id),
            "rules": []})
    for team in policy.teams or ():
        route = routing(settings, policy, team.name)  # what the daemon asks, gaps filled
        entries.append({
            "team": team.name + (" (also escalations no team recognises)"
                                 if team.name == default else ""),
            "recognised": _recognition_words(team),
            "smoc": _smoc_words(route.smoc_schedule_id, route.smoc_user_id),
            "backups": _backup_words(route.backup_user_ids, route.backup_group_id),
            "rules": [rule.name for rule in team.rules]})
    return entries


def render_handbook(policy: Policy, settings: Settings) -> str:
    """The handbook in Markdown for `policy` under `settings` (secrets are never read)."""
    env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined,  # noqa: S701 - Markdown, escaped by finalize
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             finalize=_literal)
    rules = [RuleView(n, rule, condition_lines(rule.when), Words(_OUTCOME_WORDS[rule.outcome]),
                      _timing(rule), _ee(rule, settings))
             for n, rule in enumerate(policy.rules, start=1)]
    hours = policy.business_hours
    events = settings.customer_events
    context = {
        "policy": policy,
        "rules": rules,
        "default_outcome": Words(_OUTCOME_WORDS[policy.default_outcome]),
        "criteria": [(criterion_words(c.value), list(fields))
                     for c, fields in policy.criteria_fields.items()],
        "severities": [(name, list(aliases)) for name, aliases in policy.severity_aliases.items()],
        "hours_rows": _hours(hours),
        "holidays": _holidays(hours),
        "weekend_days": ", ".join(_DAY_NAMES[d] for d in hours.weekend_days) or "none",
        "approvers": _approvers(policy, settings),
        "forbid_self_approval": policy.approval.forbid_self_approval,
        "retro_on_page": settings.retro.open_on == "page",
        "headsup_day": _DAY_NAMES[events.headsup_day],
        "headsup_time": events.headsup_time,
        "calendar": events.configured,
        "tier2_schedule": bool(settings.pagerduty.tier2_schedule_id),
        "shadow": settings.mode == "shadow",
        "morning_queue": settings.rfh.morning_queue,
        "fatigue_warnings": _fatigue(policy),
    }
    return env.from_string(_TEMPLATE.read_text(encoding="utf-8")).render(**context)

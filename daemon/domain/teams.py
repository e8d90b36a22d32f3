"""Tier 1 teams: which Support team an escalation belongs to, and so whose manager on call
approves its page.

Pure: no I/O. Every escalation belongs to exactly one team, named by `team` on the gate, the
stored row and the timeline. Teams are the policy's `teams:` section; without one every
escalation belongs to the implicit team `DEFAULT_TEAM`, approved as configured under `slack`,
`pagerduty` and `approval` in the settings.

How a team is recognised, in this order (the first step that names a team decides; within a
step, teams in the order the policy lists them):

1. a custom field of the escalation that says so (`recognised_by.fields`, e.g. incident.io's
   "Tier 1 team" = "EMEA"; PagerDuty custom fields, desk fields named in `field_names` and the
   JSM request type the same way): what Support stated about this escalation;
2. where it was declared: the PagerDuty service (`pagerduty_services`), the chat channel
   `/tier2` was used in (`slack_channels`), the Zendesk group or brand (`desk_groups`,
   `desk_brands`), the JSM project (`jsm_projects`);
3. otherwise the policy's `default_team`, or the implicit `default` team when it names none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from daemon.domain.models import Escalation, Source

DEFAULT_TEAM = "default"
"""The team of an escalation that no configured team recognises (and of every escalation when
no team is configured). Stored rows from before teams existed read as this team."""

TEAM_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"
"""A team name: lower-case letters, digits, `-` and `_`, at most 40 characters. It is a filter
value in URLs, a key in `report --format json` and a metric label, so it must need no escaping
anywhere."""

# Labels the desk sources add to a ticket (`sources.desks`): its group, brand and project.
DESK_LABELS = {"desk_groups": "group:", "desk_brands": "brand:", "jsm_projects": "project:"}


def _listed(value: object) -> object:
    """`slack_channels: C123` means `[C123]`; YAML numbers (a PagerDuty id never is one, a
    field value may be) are refused by the `str` type instead of being coerced."""
    return [value] if isinstance(value, str) else value


Names = Annotated[tuple[str, ...], BeforeValidator(_listed)]


class Recognition(BaseModel):
    """What makes an escalation this team's; every given item is enough on its own."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: dict[str, Names] = Field(
        default_factory=dict,
        description="custom field display name -> values that name this team (both "
                    "case-insensitive), e.g. {'Tier 1 team': ['EMEA']}")
    pagerduty_services: Names = Field(default=(), description="PagerDuty service ids (P…)")
    slack_channels: Names = Field(default=(), description="channel ids where /tier2 was used")
    desk_groups: Names = Field(default=(), description="Zendesk group names")
    desk_brands: Names = Field(default=(), description="Zendesk brand names")
    jsm_projects: Names = Field(default=(), description="Jira Service Management project keys")


class Recognisable(Protocol):
    """A team as recognition sees it (the policy's `Team`)."""

    @property
    def name(self) -> str: ...

    @property
    def recognised_by(self) -> Recognition: ...


def _fold(values: Sequence[str]) -> set[str]:
    return {value.strip().casefold() for value in values}


def _by_field(team: Recognisable, fields: Mapping[str, str]) -> bool:
    said = {name.strip().casefold(): value for name, value in fields.items()}
    for name, values in team.recognised_by.fields.items():
        value = said.get(name.strip().casefold())
        # A multi-select field arrives as "A, B": any of its values may name the team (and so
        # may the whole, for a single value that holds a comma).
        if value is not None and _fold([value, *value.split(",")]) & _fold(values):
            return True
    return False


def _by_origin(team: Recognisable, escalation: Escalation) -> bool:
    wanted = team.recognised_by
    if escalation.source is Source.PAGERDUTY and escalation.origin in wanted.pagerduty_services:
        return True
    if escalation.source is Source.CHAT and escalation.origin in wanted.slack_channels:
        return True
    if not escalation.source.desk:
        return False
    labels = {label.casefold() for label in escalation.labels}
    return any(f"{prefix}{name.strip()}".casefold() in labels
               for key, prefix in DESK_LABELS.items()
               for name in getattr(wanted, key))


def recognise(teams: Sequence[Recognisable], escalation: Escalation, default: str) -> str:
    """The name of the team `escalation` belongs to (see the module's order), else `default`."""
    steps: tuple[Callable[[Recognisable], bool], ...] = (
        lambda team: _by_field(team, escalation.fields),
        lambda team: _by_origin(team, escalation))
    for found in steps:
        for team in teams:
            if found(team):
                return team.name
    return default


def team_of_channel(teams: Sequence[Recognisable], channel: str, default: str) -> str:
    """The team whose `slack_channels` hold `channel` (where someone in Support used
    `/tier2`), else `default`: the team a person there most likely works for."""
    return next((team.name for team in teams if channel in team.recognised_by.slack_channels),
                default)

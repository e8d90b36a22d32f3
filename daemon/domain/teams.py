"""Tier 1 teams: which Support team an escalation belongs to, and so whose manager on call
approves its page.

Pure: no I/O. Every escalation belongs to exactly one team, named by `team` on the gate, the
stored row and the timeline. Without a `teams:` section in the policy every escalation belongs
to the implicit team `DEFAULT_TEAM`, approved as configured under `slack`, `pagerduty` and
`approval` in the settings.
"""

from __future__ import annotations

DEFAULT_TEAM = "default"
"""The team of an escalation that no configured team recognises (and of every escalation when
no team is configured). Stored rows from before teams existed read as this team."""

TEAM_NAME = r"^[a-z0-9][a-z0-9_-]{0,39}$"
"""A team name: lower-case letters, digits, `-` and `_`, at most 40 characters. It is a filter
value in URLs, a key in `report --format json` and a metric label, so it must need no escaping
anywhere."""

"""A Tier 1 team's approval routing: who approves its escalations and where they are asked.

The policy's team (`domain.policy.Team`) overrides the settings key by key; whatever it leaves
out, and everything for the implicit `default` team or a team no longer in the policy, is the
settings' (`pagerduty.smoc_schedule_id`, `approval.*`, `slack.approval_channel`,
`slack.rfh_channel`). So an escalation always has somewhere to go, and the needs-attention and
direct-message fallbacks work for every team alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.domain.policy import Policy
from daemon.settings import Settings


@dataclass(frozen=True)
class Routing:
    team: str
    smoc_schedule_id: str | None  # PagerDuty schedule whose on-call is the team's SMOC
    smoc_user_id: str | None  # a fixed SMOC (Slack user id) instead of the schedule
    backup_user_ids: tuple[str, ...]
    backup_group_id: str | None  # Slack user group (S…) of backup approvers
    approval_channel: str | None
    rfh_channel: str | None
    # The setting to fix, in words, when the approval channel is missing or refuses the bot.
    channel_setting: str = "slack.approval_channel"

    @property
    def notice_channel(self) -> str | None:
        """Where a request for help is announced: the RFH channel, else the approval one."""
        return self.rfh_channel or self.approval_channel


def routing(settings: Settings, policy: Policy, team: str) -> Routing:
    """The routing of `team` under `policy`, every gap filled from `settings`."""
    found = policy.team(team)
    slack, approval = settings.slack, settings.approval
    if found is None:
        return Routing(team=team, smoc_schedule_id=settings.pagerduty.smoc_schedule_id,
                       smoc_user_id=approval.smoc_user_id,
                       backup_user_ids=tuple(approval.backup_user_ids),
                       backup_group_id=approval.backup_group_id,
                       approval_channel=slack.approval_channel, rfh_channel=slack.rfh_channel)
    own_smoc = found.smoc_schedule_id is not None or found.smoc_user_id is not None
    # Backups are one setting, as the SMOC is: a team that names its users or its group (even
    # `backup_user_ids: []`) has the backups it names, and none of the settings'.
    own_backups = found.backup_user_ids is not None or found.backup_group_id is not None
    where = f"team {found.name!r} approval_channel in the policy"
    return Routing(
        team=team,
        smoc_schedule_id=(found.smoc_schedule_id if own_smoc
                          else settings.pagerduty.smoc_schedule_id),
        smoc_user_id=found.smoc_user_id if own_smoc else approval.smoc_user_id,
        backup_user_ids=(tuple(found.backup_user_ids or ()) if own_backups
                         else tuple(approval.backup_user_ids)),
        backup_group_id=found.backup_group_id if own_backups else approval.backup_group_id,
        approval_channel=found.approval_channel or slack.approval_channel,
        rfh_channel=found.rfh_channel or slack.rfh_channel,
        channel_setting=where if found.approval_channel else "slack.approval_channel")

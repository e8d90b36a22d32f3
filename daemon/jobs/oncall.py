"""`/tier2 who`: who is on call now, for anyone in Support.

Declaring an escalation needs no PagerDuty seat (anyone in the workspace can use `/tier2`), and
neither does knowing whom it will reach: the answer names the approver of the person's Tier 1
team (the team whose `slack_channels` hold the channel the command was used in, else the
default team), the team's backups and who is on call for Tier 2 now
(`pagerduty.tier2_schedule_id`). It is shown only to the person who asked (an ephemeral
message; a direct message when the bot may not post in that channel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daemon.domain.messages import Message, mention, mentions, message, strong
from daemon.jobs.deps import Deps
from daemon.workers.retry import Permanent, Retry

if TYPE_CHECKING:
    from daemon.jobs.approvers import Deciders

WHO = "who"  # `/tier2 who`; any other text opens the escalation form


async def tier2_on_call(deps: Deps) -> Message:
    """Tier 2's on-call person: a mention when they have a chat account, else their email; or
    why it cannot be said (a lookup that failed is said, never retried: the person can ask
    again)."""
    schedule = deps.settings.pagerduty.tier2_schedule_id
    if not schedule:
        return message("not configured (pagerduty.tier2_schedule_id)")
    if deps.pager is None:
        return message("unknown: PagerDuty is not configured (pagerduty.api_token)")
    try:
        email = await deps.pager.smoc_email(schedule)
        if email is None:
            return message("nobody is on call on the Tier 2 schedule")
        user_id = await deps.need_identity().user_id_for_email(email)
    except (Retry, Permanent) as exc:
        return message(f"could not be looked up ({exc})")
    return mention(user_id) if user_id else message(email)


async def on_call_text(deps: Deps, team: str, deciders: Deciders) -> Message:
    """The answer to `/tier2 who` for `team`."""
    if deciders.smoc_resolved:
        approver, backups = mention(deciders.ids[0]), deciders.ids[1:]
    else:
        approver, backups = message(f"nobody: {deciders.note.strip()}"), deciders.ids
    return message(
        strong("Who is on call now"), f" (team {team})\n",
        "• Approver (Support Manager on Call): ", approver, "\n",
        "• Backup approvers: ", mentions(backups, ", ") or "none", "\n",
        "• Tier 2 on call: ", await tier2_on_call(deps), "\n",
        "Anyone in Support can ask for Tier 2 with `/tier2 what is wrong`; the approver decides "
        "whether to page.")

"""`/tier2`: the escalation form built from the policy, and `/tier2 who`."""

from __future__ import annotations

from daemon.domain.messages import message
from daemon.domain.policy import Policy
from daemon.domain.teams import DEFAULT_TEAM, team_of_channel
from daemon.integrations.base import EscalationFormSpec
from daemon.jobs.approvers import Approvers
from daemon.jobs.deps import Deps
from daemon.jobs.oncall import WHO, on_call_text
from daemon.logging import get_logger
from daemon.sources.slack import SlashCommand, parse_slash_command
from daemon.store import Changes, DeliveryState, Job
from daemon.workers.retry import Permanent

NO_FORMS = ("This chat cannot open the escalation form: declare the escalation in incident.io "
            "or PagerDuty instead.")

log = get_logger("tier2gate.approval")


class Forms:
    """The `/tier2` command: `open_form` opens the escalation form, or answers `/tier2 who`.
    Raises `Permanent` when the stored delivery is gone."""

    def __init__(self, deps: Deps, approvers: Approvers) -> None:
        self.deps = deps
        self.approvers = approvers

    async def open_form(self, job: Job) -> Changes:
        """`/tier2`: open the escalation form while Slack's trigger id is still valid (~3 s)."""
        delivery = await self.deps.store.get_delivery(int(job.payload["delivery"]))
        if delivery is None:
            raise Permanent("command delivery is not in the store")
        command = parse_slash_command(delivery.body)
        policy = self.deps.policy.current()
        if command.text.strip().casefold() == WHO:
            await self._tell_who(command, policy)
            return Changes(delivery_done=(delivery.id, DeliveryState.PROCESSED, WHO))
        spec = EscalationFormSpec(
            severities=tuple(policy.severity_aliases),
            criteria=tuple((c.value, names[0]) for c, names in policy.criteria_fields.items()
                           if names),
            title=command.text.strip()[:150], channel=command.channel_id,
            evidence=tuple((item.fields[0], item.shown) for item in policy.evidence))
        if self.deps.chat is not None and self.deps.forms is None:
            # A chat without forms does not offer `/tier2`: the person hears so at once.
            await self.deps.need_notices().tell_user(command.channel_id, command.user_id,
                                                     message(NO_FORMS))
            return Changes(delivery_done=(delivery.id, DeliveryState.IGNORED, NO_FORMS))
        await self.deps.need_forms().open_escalation_form(command.trigger_id, spec)
        return Changes(delivery_done=(delivery.id, DeliveryState.PROCESSED, ""))

    async def _tell_who(self, command: SlashCommand, policy: Policy) -> None:
        """`/tier2 who`, answered to the person only: ephemeral where they asked, or a direct
        message when the bot may not post there (a channel it was never invited to)."""
        team = team_of_channel(policy.teams or (), command.channel_id,
                               policy.default_team or DEFAULT_TEAM)
        text = await on_call_text(self.deps, team, await self.approvers.for_team(team))
        chat = self.deps.need_notices()
        try:
            await chat.tell_user(command.channel_id, command.user_id, text)
        except Permanent as exc:
            log.info("approval.who_direct", error=str(exc))
            await chat.post_notice(command.user_id, text)

"""The Escalation Engineer jobs: offer, clicks, the bounded wait, quiet reminders, handoffs.

Who is on rotation comes from the roster (`daemon/roster.py`), read when a job runs, so an
edited roster counts from the next job on. Ownership is decided under the escalation row's
version check: two "Take it" clicks handled at once on two replicas both read the row, one
commits, the other conflicts, reads again and is told who has it.

The rotation handoff is one job per rotation, keyed by the rotation's id: the periodic check
(`ee_rotation`, one per period across replicas, like `prune`) enqueues it, and the job key
makes a second enqueue a no-op, across restarts and replicas.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from daemon.clock import to_datetime
from daemon.domain.ee import (
    on_ee_foreign_click,
    on_ee_nobody,
    on_ee_offered,
    on_ee_outcome,
    on_ee_quiet,
    on_ee_take,
    on_ee_wait_over,
)
from daemon.domain.effects import EEOffer, EEQuiet
from daemon.domain.events import EEHandedOver, EventKind
from daemon.domain.gate import EEOutcome, Phase
from daemon.domain.messages import Message, mention, mentions, message
from daemon.domain.transitions import Step
from daemon.integrations.base import EEOffers, EEOfferView, MessageRef, Notices
from daemon.integrations.shorten import shorten
from daemon.jobs.deps import Deps
from daemon.jobs.handler import After, recorded, step_handler
from daemon.jobs.views import escalation_name, fitted, human_time, link_line, links
from daemon.logging import get_logger
from daemon.roster import Rotation
from daemon.settings import EESettings
from daemon.sources.slack import EEOfferClick
from daemon.store import Changes, Delivery, DeliveryState, Job, NewEvent, NewJob
from daemon.store.mapping import Loaded
from daemon.store.payloads import effect_payload
from daemon.workers.retry import Permanent

ROTATION_CHECK = "ee_rotation"
HANDOFF = "ee_handoff"
# A reminder is not news: it does not reset the quiet clock.
_QUIET_EVENTS = (EventKind.EE_REMINDED,)
# The handoff is one chat message (Slack: at most 40,000 characters of text), measured as the
# chat sends it: each listed escalation gets a bounded line, and what does not fit is counted
# and left to the EE page (`/ee`).
_HANDOFF_TITLE_MAX_CHARS = 150
_HANDOFF_LINE_MAX_CHARS = 1_200
_HANDOFF_MAX_CHARS = 36_000

log = get_logger("tier2gate.ee")


def rotation_check_job(ee: EESettings, now_s: float, *, next_period: bool = False) -> NewJob:
    """The rotation check of the period `now_s` falls in (due now), or of the next one."""
    period = int(now_s // ee.check_interval_s) + (1 if next_period else 0)
    run_at = period * ee.check_interval_s if next_period else 0.0
    return NewJob(ROTATION_CHECK, f"{ROTATION_CHECK}:{ee.check_interval_s:g}:{period}", {},
                  run_at)


def offer_view(current: Loaded, offered_to: tuple[str, ...], *, wait_minutes: float = 0,
               public: dict[str, str] | None = None, shadow: bool = False) -> EEOfferView:
    gate, escalation = current.gate, current.escalation
    ee = gate.ee
    facts = gate.decision.facts if gate.decision else None
    ended = ""
    if gate.resolved_at is not None and not (ee and ee.outcome):
        ended = (f"The source incident {'was ' + gate.ended_as if gate.ended_as else 'is over'}"
                 ": nothing is needed any more.")
    elif gate.phase is Phase.IGNORED and not (ee and ee.outcome):
        why = gate.decision.reason if gate.decision else "no rule asks for help"
        ended = f"The policy now ignores this escalation ({why}): nothing is needed any more."
    return EEOfferView(
        escalation_id=current.row.id, title=escalation.title or "(untitled)",
        reference=escalation.reference, customer=escalation.customer,
        severity=(facts.severity if facts and facts.severity else escalation.severity),
        emergency=gate.emergency, reason=gate.decision.reason if gate.decision else "",
        offered_to=offered_to, owner_id=ee.owner if ee else "",
        outcome=ee.outcome.value if ee and ee.outcome else "",
        outcome_by=ee.outcome_by if ee else "",
        wait_minutes=wait_minutes, links=public or {}, ended=ended, shadow=shadow,
        take_over=gate.ee_open and ee is not None and ee.outcome is EEOutcome.ENGINEERING,
        went_on=ee is not None and ee.unclaimed and ee.outcome is None,
        smoc_asked=gate.approval is not None or (
            gate.phase is Phase.AWAITING_APPROVAL and ee is not None and not ee.waiting))


class EEJobs:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.offer = step_handler(deps, self._offer, guard=_to_offer)
        self.wait_over = step_handler(deps, self._wait_over)
        self.unclaimed = step_handler(deps, self._unclaimed, guard=_unclaimed)
        self.quiet = step_handler(deps, self._quiet)

    def rotation(self, now: datetime) -> Rotation | None:
        return self.deps.roster.current().at(now)

    async def _offer(self, job: Job, current: Loaded, now: datetime) -> Step | After:
        """Offer the escalation to the EEs on rotation, or go on without them at once."""
        gate = current.gate
        if gate.resolved_at is not None:  # over before it was offered: as it was without EEs
            return on_ee_nobody(gate, "", now)
        wait = effect_payload(job, EEOffer).wait_minutes if gate.emergency else 0.0
        settings = self.deps.settings
        if not self.deps.roster.configured:
            return on_ee_nobody(gate, "", now)
        rotation = self.rotation(now)
        channel = settings.ee.offer_channel(settings.slack)
        # A chat without offers to the EEs: as if nobody were on the rotation, said why.
        cannot_offer = self.deps.chat is not None and self.deps.ee_offers is None
        if rotation is None or not channel or cannot_offer:
            why = ("nobody is on the EE rotation" if rotation is None
                   else "no channel for EE offers (ee.channel)" if not channel
                   else "the chat cannot offer escalations to the EEs")
            log.info("ee.skipped", escalation_id=current.row.id, why=why)
            return on_ee_nobody(gate, why, now)
        if gate.ee is not None and gate.ee.message_id:
            return on_ee_offered(gate, rotation.id, rotation.user_ids, gate.ee.channel,
                                 gate.ee.message_id, now, waiting=wait > 0, unclaimed_at=None)
        take_within = settings.ee.take_within_minutes
        if not gate.emergency and job.attempts > 1 \
                and now.timestamp() - job.created_at >= take_within * 60:
            # Tried and tried (Slack failing): the EEs could not have taken it in time either,
            # so it goes on to the RFH path as if nobody had. An emergency has its own bound.
            why = f"the EE offer could not be posted within {take_within:g} minutes"
            log.error("ee.offer_failed", escalation_id=current.row.id, error=why)
            return on_ee_nobody(gate, why, now)
        view = offer_view(current, rotation.user_ids, wait_minutes=wait,
                          public=links(current, settings, self.deps.notices),
                          shadow=self.deps.shadow)
        chat = self.deps.need_ee_offers()
        try:
            # An earlier attempt may have posted and died before recording it: look first.
            found = await self._posted_before(chat, channel, current.row.id) \
                if job.attempts > 1 else None
            ref = found or await chat.post_ee_offer(channel, view)
        except Permanent as exc:
            # Nobody can see an offer that cannot be posted: go on without the EEs at once.
            log.error("ee.offer_failed", escalation_id=current.row.id, error=str(exc))
            why = f"the EE offer could not be posted: {exc}"
            return on_ee_nobody(gate, why, now)
        unclaimed_at = now + timedelta(minutes=take_within)
        return lambda fresh, at: on_ee_offered(fresh.gate, rotation.id, rotation.user_ids,
                                               ref.channel, ref.ts, at, waiting=wait > 0,
                                               unclaimed_at=unclaimed_at)

    @staticmethod
    async def _posted_before(chat: EEOffers, channel: str, escalation_id: str) -> MessageRef | None:
        try:
            return await chat.find_ee_offer(channel, escalation_id)
        except Permanent as exc:  # e.g. no channels:history scope: post again, maybe twice
            log.warning("ee.lookup_failed", error=str(exc))
            return None

    async def update(self, job: Job) -> None:
        """Show the offer's current state in its message."""
        current = await self.deps.store.load_escalation(str(job.escalation_id))
        if current is None or current.gate.ee is None or not current.gate.ee.message_id:
            return
        ee = current.gate.ee
        view = offer_view(current, ee.offered_to, public=links(current, self.deps.settings,
                                                          self.deps.notices),
                          shadow=self.deps.shadow)
        await self.deps.need_ee_offers().update_ee_offer(MessageRef(ee.channel, ee.message_id),
                                                         view)

    async def _wait_over(self, _job: Job, current: Loaded, now: datetime) -> Step:
        return on_ee_wait_over(current.gate, now)

    async def _unclaimed(self, _job: Job, current: Loaded, now: datetime) -> Step:
        minutes = self.deps.settings.ee.take_within_minutes
        return on_ee_nobody(current.gate, f"no EE took it within {minutes:g} minutes", now)

    async def _quiet(self, job: Job, current: Loaded, now: datetime) -> Step:
        """Remind the owning EE when nothing happened on their escalation for a while."""
        timeline = await self.deps.store.timeline(current.row.id)
        last = max((entry.at for entry in timeline if entry.event not in _QUIET_EVENTS),
                   default=current.row.updated_at)
        n = effect_payload(job, EEQuiet).n
        step, remind = on_ee_quiet(current.gate, n, to_datetime(last),
                                   self.deps.settings.ee.quiet_after_minutes, now)
        if remind and current.gate.ee is not None:
            quiet_h = (now - to_datetime(last)).total_seconds() / 3600
            notices = self.deps.need_notices()
            found = links(current, self.deps.settings, notices)
            text = message(f":hourglass: Nothing has happened on escalation "
                           f"{escalation_name(current)} for {quiet_h:.1f} hours, and you are its "
                           "DRI. Post an update where the ask came from, or press \"Resolved "
                           "without Engineering\" or \"Needs Engineering\" on the offer.")
            if found:
                text += message("\n", link_line(found))
            await notices.post_notice(current.gate.ee.owner, text)
        return step

    async def click(self, action: EEOfferClick, delivery: Delivery) -> Changes:
        """"Take it", "Resolved without Engineering" or "Needs Engineering" on an offer."""
        done = (delivery.id, DeliveryState.PROCESSED, "")
        current = await self.deps.store.load_escalation(action.escalation_id)
        if current is None:
            return Changes(delivery_done=(delivery.id, DeliveryState.IGNORED,
                                          f"unknown escalation {action.escalation_id}"))
        gate = current.gate
        now = self.deps.now()
        click_id = f"{action.user_id}-{action.action_ts}"
        ee = gate.ee
        if ee is None or (action.channel, action.message_ts) != (ee.channel, ee.message_id):
            # Not this escalation's recorded offer: nothing is decided.
            log.warning("ee.click_mismatch", user=action.user_id, channel=action.channel,
                        ts=action.message_ts)
            told = on_ee_foreign_click(gate, action.user_id, click_id, action.channel)
            return recorded(current, told, now, (
                delivery.id, DeliveryState.IGNORED, "not the escalation's recorded EE offer")
            ) or Changes(delivery_done=done)
        if action.action == "take":
            rotation = self.rotation(now)
            on_rotation = rotation is not None and action.user_id in rotation.user_ids
            name = (rotation.name_of(action.user_id) if rotation else "") or action.user_name
            owner_stays = rotation is not None and ee.owner in rotation.user_ids
            step = on_ee_take(gate, action.user_id, name, now, on_rotation=on_rotation,
                              owner_on_rotation=owner_stays, click_id=click_id,
                              channel=action.channel,
                              quiet_minutes=self.deps.settings.ee.quiet_after_minutes)
        else:
            outcome = EEOutcome.RESOLVED if action.action == "resolved" else \
                EEOutcome.ENGINEERING
            step = on_ee_outcome(gate, action.user_id, outcome, now, click_id=click_id,
                                 channel=action.channel)
        return recorded(current, step, now, done) or Changes(delivery_done=done)

    async def check_rotation(self, _job: Job) -> Changes:
        """Hand the current rotation over once: its handoff job's key is the rotation's first
        day.

        A rotation older than the retention of finished jobs is not handed over (its handoff
        job may have been pruned: it would be sent again)."""
        now_s = self.deps.clock.now()
        jobs: list[NewJob] = [rotation_check_job(self.deps.settings.ee, now_s, next_period=True)]
        rotation = self.rotation(to_datetime(now_s))
        # A day's margin for the job to finish and be kept, or half the retention when it is
        # shorter than two days (at least one day is kept: the window is never empty).
        kept = self.deps.settings.retention.jobs_days
        recent = timedelta(days=max(kept - 1, kept / 2))
        if rotation is not None and to_datetime(now_s) - rotation.start < recent:
            # Keyed by the first day: a rotation whose end or people are edited in the roster
            # (someone stays a week longer) is the same rotation, handed over once.
            first = rotation.first_day.isoformat()
            jobs.append(NewJob(HANDOFF, f"{HANDOFF}:{first}",
                               {"rotation": rotation.id, "first_day": first}))
        return Changes(jobs=tuple(jobs))

    async def handoff(self, job: Job) -> Changes | None:
        """One message to the incoming EEs listing every open escalation the outgoing EEs
        own (the previous rotation's, and any earlier owner off this rotation whose work nobody
        took over), with its state, last update and links; each listed escalation notes it."""
        roster = self.deps.roster.current()
        first = job.payload.get("first_day")
        rotation = next((r for r in roster.rotations
                         if (r.first_day.isoformat() == first if first
                             else r.id == job.payload["rotation"])), None)
        if rotation is None:
            log.warning("ee.handoff_rotation_gone", rotation=job.payload["rotation"])
            return None
        previous = roster.before(rotation)
        # The previous rotation's EEs, and anyone off this rotation who still owns open work
        # (an earlier rotation's EE whose escalations nobody took over): minus those who stay.
        still_own = sorted(await self.deps.store.ee_open_per_owner())
        outgoing = tuple(u for u in dict.fromkeys(
            (*(previous.user_ids if previous else ()), *still_own))
            if u not in rotation.user_ids)
        owned = await self.deps.store.load_owned_by(outgoing)
        channel = self.deps.settings.ee.offer_channel(self.deps.settings.slack)
        if not channel:
            raise Permanent("no channel for the EE handoff: set ee.channel or slack.rfh_channel")
        chat = self.deps.need_notices()
        text = handoff_text(rotation, outgoing, owned, self.deps, chat)
        # An earlier attempt may have posted and died before finishing: look first.
        found = None
        if job.attempts > 1:
            try:
                found = await chat.find_notice(channel, job.key)
            except Permanent as exc:  # e.g. no channels:history scope: post, maybe twice
                log.warning("ee.lookup_failed", error=str(exc))
        if found is None:
            await chat.post_notice(channel, text, job.key)
        log.info("ee.handed_over", rotation=rotation.id, escalations=len(owned))
        at = self.deps.clock.now()
        return Changes(events=tuple(
            NewEvent.of(current.row.id, EEHandedOver(rotation=rotation.id, owner=owner,
                                                    to=list(rotation.user_ids)),
                        "tier2gate", at, f"{EventKind.EE_HANDED_OVER.value}:{rotation.id}")
            for owner, current in owned))


def _to_offer(_job: Job, current: Loaded) -> bool:
    """Still wanting help: a request for help, or an emergency before its decision."""
    return current.gate.phase in (Phase.RFH, Phase.AWAITING_APPROVAL)


def _unclaimed(_job: Job, current: Loaded) -> bool:
    """Offered, nobody owns it yet, and it is not over."""
    ee = current.gate.ee
    return ee is not None and not ee.owner and current.gate.resolved_at is None


def handoff_text(rotation: Rotation, outgoing: tuple[str, ...],
                 owned: list[tuple[str, Loaded]], deps: Deps, chat: Notices) -> Message:
    """The generated running document: every value from outside is text, measured as `chat`
    sends it."""
    head = message(f":handshake: EE rotation {rotation.id} starts: ",
                   mentions(rotation.user_ids), ". Welcome on rotation.")
    if not owned:
        who = message(" from ", mentions(outgoing)) if outgoing else ""
        return message(head, "\nNo open escalation is handed over", who, ".")
    text = message(head, f"\nOpen escalations owned by the outgoing EEs ({len(owned)}). "
                   "Ownership moves only when one of you takes it over: press Take it on its "
                   "EE offer.")
    size = chat.notice_size(text)
    for listed, (owner, current) in enumerate(owned):
        found = links(current, deps.settings, chat)
        offer = (chat.permalink(MessageRef(current.gate.ee.channel, current.gate.ee.message_id))
                 if current.gate.ee is not None and current.gate.ee.message_id else None)
        if offer is not None:
            found["EE offer"] = offer.url
        updated = human_time(to_datetime(current.row.updated_at))
        title = shorten(current.escalation.title, _HANDOFF_TITLE_MAX_CHARS)
        line = message(f"\n• {escalation_name(current)}: {title} · {current.row.state} · owner ",
                       mention(owner), f" · last update {updated}")
        if found:
            line += message(" · ", link_line(found))
        line = fitted(line, _HANDOFF_LINE_MAX_CHARS, chat.notice_size)
        if size + chat.notice_size(line) > _HANDOFF_MAX_CHARS:
            return text + (f"\n…and {len(owned) - listed} more: the Escalation Engineers page "
                           "of the dashboard lists them all.")
        size += chat.notice_size(line)
        text += line
    return text

"""The Escalation Engineer (EE) step of the state machine. Pure, like `transitions`.

Software engineers rotate into Support as Escalation Engineers. A request for help (and, when
its policy rule says so, an emergency) is offered to the EEs on rotation; the one who takes it
becomes its directly responsible individual (DRI) and ends the EE step with their word:
"resolved without Engineering", or "needs Engineering", which continues on today's path (the
request-for-help notice and issue, or the SMOC's approval request for an emergency).

An emergency never waits on an empty rotation: the offer job asks the SMOC at once when
nobody is on it (`on_ee_nobody`), and an emergency whose rule waits for an EE asks the SMOC
when the bounded wait is over (`on_ee_wait_over`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from daemon.domain.effects import EEQuiet, Effect, EffectKind, RfhNote, TellUser
from daemon.domain.gate import EEOutcome, EEState, Gate, Phase
from daemon.domain.messages import Message, mention, message
from daemon.domain.transitions import DAEMON, Record, Step, rfh_effects, smoc_effects


def _continue(gate: Gate, now: datetime) -> tuple[Effect, ...]:
    """Today's path from where the escalation stands: the RFH notice and issue for a request
    for help, the SMOC's approval request for an emergency not yet asked."""
    if gate.phase is Phase.RFH:
        return rfh_effects()
    if gate.phase is Phase.AWAITING_APPROVAL and gate.approval is None:
        return smoc_effects(gate.decision, now)
    return ()


def on_ee_nobody(gate: Gate, why: str, now: datetime) -> Step:
    """No EE will look at it (no roster is configured, or nobody is on the rotation now, or
    nobody took it in time): it goes on at once on today's path. `why` in words; "" when the
    EE layer is not configured at all (nothing to record)."""
    if gate.ee is not None and gate.ee.owner:
        return Step(gate)  # an EE took it meanwhile: the EE decides
    if gate.phase not in (Phase.RFH, Phase.AWAITING_APPROVAL):
        return Step(gate)  # ignored or over meanwhile: nobody is needed, nothing to go on to
    effects = _continue(gate, now)
    if gate.ee is not None:
        if gate.ee.message_id:  # the offer says it went on without an EE
            effects += (Effect(EffectKind.EE_UPDATE, "unclaimed"),)
        gate = gate.model_copy(update={"ee": gate.ee.model_copy(
            update={"waiting": False, "unclaimed": True})})
    records = (Record("ee_skipped", DAEMON, {"why": why}),) if why else ()
    return Step(gate, records, effects)


def on_ee_offered(gate: Gate, rotation: str, offered_to: tuple[str, ...], channel: str, ts: str,
                  now: datetime, *, waiting: bool, unclaimed_at: datetime | None) -> Step:
    """The offer is posted to the EEs on rotation (`offered_to`, chat user ids). A request for
    help nobody takes by `unclaimed_at` goes on without them."""
    if gate.ee is not None and gate.ee.message_id:
        # Offered before (a request for help that became an emergency): the same message. An
        # EE who already gave their word is not waited for: the SMOC is asked now.
        said = gate.ee.outcome is not None
        ee = gate.ee.model_copy(update={"waiting": waiting and not said})
        return Step(gate.model_copy(update={"ee": ee}), (),
                    (Effect(EffectKind.EE_UPDATE, "emergency"),
                     *(_continue(gate, now) if said else ())))
    ee = EEState(rotation=rotation, offered_at=now, offered_to=offered_to, channel=channel,
                 message_id=ts, waiting=waiting)
    effects: tuple[Effect, ...] = ()
    if unclaimed_at is not None and gate.phase is Phase.RFH:
        effects = (Effect(EffectKind.EE_UNCLAIMED, "unclaimed", run_at=unclaimed_at),)
    return Step(gate.model_copy(update={"ee": ee}),
                (Record("ee_offered", DAEMON, {"rotation": rotation, "to": list(offered_to),
                                               "channel": channel, "ts": ts},
                        once_key="ee_offered"),), effects)


def _tell(user_id: str, click_id: str, text: Message | str, channel: str) -> Effect:
    return Effect(EffectKind.TELL_USER, f"ee-{click_id}",
                  TellUser(user=user_id, text=message(text), channel=channel))


def on_ee_foreign_click(gate: Gate, user_id: str, click_id: str, channel: str) -> Step:
    """A button naming this escalation on a message that is not its recorded offer (an offer
    whose post is not recorded yet, or another message): nothing changes, the clicker is
    told."""
    return Step(gate, (), (_tell(user_id, click_id, "These buttons are not this escalation's "
                                 "recorded offer (yet): nothing changed. If the offer was just "
                                 "posted, press again in a minute.", channel),))


def on_ee_take(gate: Gate, user_id: str, user_name: str, now: datetime, *, on_rotation: bool,
               owner_on_rotation: bool, click_id: str, channel: str,
               quiet_minutes: float) -> Step:
    """An EE pressed "Take it". The first one becomes the DRI (`ee_assigned`); anyone else is
    told who has it, and someone not on the rotation is told so: neither changes anything.

    After a rotation change an incoming EE takes over an escalation whose owner is no longer
    on the rotation (`owner_on_rotation` False): ownership moves only then
    (`ee_taken_over`)."""
    ee = gate.ee
    if ee is None:
        return Step(gate)
    if (gate.resolved_at is not None or gate.phase is Phase.IGNORED) and not ee.owner:
        return Step(gate, (), (_tell(user_id, click_id, "This escalation is over: nothing "
                                     "to take.", channel),))
    if not on_rotation:
        return Step(gate, (), (_tell(user_id, click_id, "Only the Escalation Engineers on the "
                                     "current rotation can take this.", channel),))
    # An escalation its EE sent on to Engineering is still theirs while it is open (the
    # handoff lists it): an incoming EE takes it over like any other.
    if ee.owner and (ee.owner == user_id or owner_on_rotation or not gate.ee_open):
        text = (message("You already own this escalation.") if ee.owner == user_id else
                message(mention(ee.owner), " has already taken this escalation."))
        return Step(gate, (), (_tell(user_id, click_id, text, channel),))
    if ee.owner:
        moved = ee.model_copy(update={"owner": user_id, "owner_name": user_name})
        effects = [Effect(EffectKind.EE_UPDATE, f"taken-over-{click_id}")]
        if gate.approval is not None:
            effects.append(Effect(EffectKind.UPDATE_APPROVAL, f"ee-taken-over-{click_id}"))
        return Step(gate.model_copy(update={"ee": moved}),
                    (Record("ee_taken_over", user_id, {"from": ee.owner, "name": user_name,
                                                       "rotation": ee.rotation}),),
                    tuple(effects))
    taken = ee.model_copy(update={"owner": user_id, "owner_name": user_name,
                                  "assigned_at": now})
    effects = [Effect(EffectKind.EE_UPDATE, "assigned"),
               Effect(EffectKind.EE_QUIET, "quiet-1", EEQuiet(n=1),
                      now + timedelta(minutes=quiet_minutes))]
    if gate.approval is not None:
        # The request shows the DRI.
        effects.append(Effect(EffectKind.UPDATE_APPROVAL, "ee-assigned"))
    details: dict[str, Any] = {"rotation": ee.rotation, "name": user_name,
                               "after_s": round((now - ee.offered_at).total_seconds(), 3)}
    return Step(gate.model_copy(update={"ee": taken}),
                (Record("ee_assigned", user_id, details, once_key="ee_assigned"),),
                tuple(effects))


def on_ee_outcome(gate: Gate, user_id: str, outcome: EEOutcome, now: datetime, *,
                  click_id: str, channel: str) -> Step:
    """The owning EE says how the EE step ended. Only the owner may say it, once."""
    ee = gate.ee
    if ee is None:
        return Step(gate)
    if ee.owner != user_id:
        text = (message("Only the EE who took this escalation (", mention(ee.owner),
                        ") can say that.") if ee.owner else message("Take the escalation first."))
        return Step(gate, (), (_tell(user_id, click_id, text, channel),))
    if ee.outcome is not None:
        return Step(gate, (), (_tell(user_id, click_id, "This was decided already.", channel),))
    ended = ee.model_copy(update={"outcome": outcome, "outcome_at": now, "outcome_by": user_id,
                                  "waiting": False})
    updates: dict[str, Any] = {"ee": ended}
    effects: list[Effect] = [Effect(EffectKind.EE_UPDATE, "outcome")]
    if outcome is EEOutcome.ENGINEERING:
        event = "ee_needs_engineering"
        effects += _continue(gate, now)
    else:
        event = "ee_resolved"
        if ee.unclaimed and gate.phase is Phase.RFH:
            # It had gone on to Tier 2 before this EE took it: its issue hears it is done.
            effects.append(Effect(EffectKind.RFH_NOTE, "ee-resolved", RfhNote(text=(
                f"The Escalation Engineer who took this request for help (chat user {user_id}) "
                "resolved it without Engineering after it had come here: close this issue "
                "unless something is still wanted."))))
        # Only an emergency whose rule holds the SMOC's request back for the EE is closed by
        # the EE's word; one on its way to the SMOC (its rule does not wait, or the wait is
        # over) stays the SMOC's to decide, even before the request is posted.
        if gate.phase is Phase.AWAITING_APPROVAL and gate.approval is None and ee.waiting:
            updates["phase"] = Phase.CLOSED  # the SMOC was never needed
    if gate.approval is not None:
        effects.append(Effect(EffectKind.UPDATE_APPROVAL, f"ee-{outcome.value}"))
    return Step(gate.model_copy(update=updates),
                (Record(event, user_id, {"rotation": ee.rotation}, once_key="ee_outcome"),),
                tuple(effects))


def on_ee_wait_over(gate: Gate, now: datetime) -> Step:
    """An emergency's bounded wait for an EE is over: unless the EE resolved it, ask the SMOC."""
    if gate.phase is not Phase.AWAITING_APPROVAL or gate.approval is not None:
        return Step(gate)
    if gate.resolved_at is not None or (gate.ee is not None and gate.ee.outcome is not None):
        return Step(gate)
    ee = gate.ee.model_copy(update={"waiting": False}) if gate.ee else None
    shown = (Effect(EffectKind.EE_UPDATE, "wait-over"),) if ee is not None and ee.message_id else ()
    return Step(gate.model_copy(update={"ee": ee}),
                (Record("ee_wait_over", DAEMON, {}),),
                (*smoc_effects(gate.decision, now), *shown))


def on_ee_quiet(gate: Gate, n: int, last_activity: datetime, quiet_minutes: float,
                now: datetime) -> tuple[Step, bool]:
    """The quiet timer of an owned escalation. Returns the step and whether the owner must be
    reminded now: only when nothing happened on it for `quiet_minutes`. Either way the next
    timer is set while the EE owns it."""
    if not gate.ee_open or gate.ee is None or gate.ee.outcome is not None:
        return Step(gate), False
    quiet = timedelta(minutes=quiet_minutes)
    if last_activity + quiet > now:
        due = last_activity + quiet
        return Step(gate, (), (Effect(EffectKind.EE_QUIET, f"quiet-{n}-{int(due.timestamp())}",
                                      EEQuiet(n=n), due),)), False
    ee = gate.ee.model_copy(update={"quiet_reminders": gate.ee.quiet_reminders + 1})
    return Step(gate.model_copy(update={"ee": ee}),
                (Record("ee_reminded", DAEMON, {"owner": ee.owner, "n": n}),),
                (Effect(EffectKind.EE_QUIET, f"quiet-{n + 1}", EEQuiet(n=n + 1),
                        now + quiet),)), True

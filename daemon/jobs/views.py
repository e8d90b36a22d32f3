"""Domain -> what people read: the approval view, the page text, RFH notices."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from daemon.clock import iso
from daemon.domain.customer_events import CustomerEvent
from daemon.domain.effects import EffectKind
from daemon.domain.gate import Gate, Phase, Verdict
from daemon.domain.messages import Link, Message, Strong, Text, joined, mention, message
from daemon.domain.models import Escalation, Status
from daemon.domain.policy import Policy
from daemon.domain.teams import DEFAULT_TEAM
from daemon.integrations.base import (
    ApprovalView,
    Decided,
    DecisionKind,
    MessageRef,
    NoDecision,
    Notices,
    Tier2Load,
)
from daemon.integrations.shorten import ELLIPSIS, shorten
from daemon.settings import Settings
from daemon.store.mapping import Loaded

_KIND = {Verdict.APPROVED: DecisionKind.APPROVED, Verdict.DECLINED: DecisionKind.DECLINED,
         Verdict.TIMED_OUT: DecisionKind.TIMED_OUT}


def links(current: Loaded, settings: Settings, chat: Notices | None = None) -> dict[str, str]:
    """Source links plus the runbook, the dashboard, the page and the approval message (when
    `chat` can link to its messages), by label, when they can be made into URLs."""
    found = dict(current.escalation.links)
    decision = current.gate.decision
    if decision is not None and decision.runbook and settings.runbook_base_url:
        found["runbook"] = settings.runbook_base_url.rstrip("/") + "/" + decision.runbook
    if settings.public_url:
        found["tier2gate"] = f"{settings.public_url.rstrip('/')}/#{current.row.id}"
    if current.gate.page is not None and current.gate.page.url:
        found["page"] = current.gate.page.url
    approval = current.gate.approval
    thread = (chat.permalink(MessageRef(approval.channel, approval.message_id))
              if approval is not None and chat is not None else None)
    if thread is not None:
        found[thread.label] = thread.url
    return found


def fitted(text: Message, limit: int, size: Callable[[Message], int]) -> Message:
    """`text` if `size` (the chat's measure) says it takes at most `limit` characters, else
    its first parts that fit, the last text among them shortened, then an ellipsis."""
    if size(text) <= limit:
        return text
    kept = Message()
    for part in text.parts:
        if size(kept + part) > limit - len(ELLIPSIS):
            if isinstance(part, Text | Strong):
                kept = _longest_prefix(kept, part, limit, size)
            break
        kept += part
    return kept if kept.plain.endswith(ELLIPSIS) else kept + ELLIPSIS


def _longest_prefix(kept: Message, part: Text | Strong, limit: int,
                    size: Callable[[Message], int]) -> Message:
    """`kept` and as much of `part` (shortened, ending in an ellipsis) as fits in `limit`."""
    words = part.text if isinstance(part, Text) else part.strong
    low, high = 0, len(words) - 1
    while low < high:  # the longest cut that fits: sizes grow with the cut
        middle = (low + high + 1) // 2
        if size(kept + _cut(part, shorten(words, middle))) <= limit:
            low = middle
        else:
            high = middle - 1
    return kept + _cut(part, shorten(words, low)) if low > len(ELLIPSIS) else kept


def _cut(part: Text | Strong, words: str) -> Text | Strong:
    return Text(text=words) if isinstance(part, Text) else Strong(strong=words)


def link_line(found: dict[str, str]) -> Message:
    """Links by label, on one line: `a · b`."""
    return joined((Link(url=url, label=name) for name, url in found.items()), " · ")


def approval_view(current: Loaded, settings: Settings, now: datetime,
                  approvers: tuple[str, ...] | None = None, smoc_note: str | None = None, *,
                  smoc_resolved: bool | None = None, policy: Policy | None = None,
                  tier2_load: Tier2Load | None = None) -> ApprovalView:
    """The approval message's facts; `approvers`, `smoc_note` and `smoc_resolved` are those
    of a request about to be posted, else the recorded request's; `tier2_load` the load of the
    engineer who would be paged, as it was when the request was asked. `policy` (the one in
    force) says which evidence Support should have handed over."""
    gate, escalation = current.gate, current.escalation
    decision = gate.decision
    facts = decision.facts if decision else None
    decided = None
    if gate.decided is not None:
        decided = Decided(kind=_KIND[gate.decided.verdict], by=gate.decided.by,
                          at=human_time(gate.decided.at), reason=gate.decided.reason,
                          paging=gate.decided.pages, self_approved=gate.decided.self_approved)
    approval = gate.approval
    no_decision, detail = _no_decision(gate, escalation)
    declarer = escalation.declared_by
    evidence = policy.evidence_pack(escalation.fields) if policy is not None else ((), ())
    return ApprovalView(
        escalation_id=current.row.id,
        title=escalation.title or "(untitled)",
        reference=escalation.reference,
        customer=escalation.customer,
        severity=(facts.severity if facts and facts.severity else escalation.severity),
        reason=decision.reason if decision else "",
        criteria=tuple(c.value for c, held in facts.criteria.items() if held) if facts else (),
        age_minutes=int(escalation.age_minutes(now)),
        weekend=bool(facts and facts.weekend),
        off_hours=bool(facts and facts.off_hours),
        approver_ids=approvers if approvers is not None else (
            approval.approvers if approval else ()),
        smoc_note=smoc_note if smoc_note is not None else (approval.smoc_note if approval else ""),
        smoc_resolved=smoc_resolved if smoc_resolved is not None else bool(
            approval and approval.smoc_resolved),
        declarer_id=declarer.chat_id if declarer else "",
        declarer_name=(declarer.name or declarer.email) if declarer else "",
        links=links(current, settings),  # without the chat: not the message itself
        shadow=settings.mode == "shadow",
        drill=escalation.drill,
        decided=decided,
        problem=" ".join(p.reason for p in gate.problems),
        page_failed=any(p.effect == EffectKind.PAGE and p.final for p in gate.problems),
        no_decision=no_decision,
        no_decision_detail=detail,
        customer_events=tuple(event_line(e) for e in facts.customer_events) if facts else (),
        evidence_present=evidence[0],
        evidence_missing=evidence[1],
        ee_id=gate.ee.owner if gate.ee else "",
        ee_outcome=gate.ee.outcome.value if gate.ee and gate.ee.outcome else "",
        tier2_load=tier2_load,
        team="" if gate.team == DEFAULT_TEAM else gate.team,
    )


def event_line(event: CustomerEvent) -> str:
    """A customer event as the approval request names it (plain text: the chat escapes it)."""
    what = f"{event.kind.value}: {event.summary}" if event.summary else event.kind.value
    return f"{what} (until {human_time(event.end)})"


def _no_decision(gate: Gate, escalation: Escalation) -> tuple[NoDecision | None, str]:
    """Why nobody needs to decide although nobody did, read from the current state: a message
    rendered at any moment (including one posted while its escalation moved on) tells the
    truth instead of offering buttons that would decide nothing."""
    if gate.decided is not None or gate.phase is Phase.AWAITING_APPROVAL:
        return None, ""
    if gate.ended_as == Status.MERGED.value:
        return NoDecision.MERGED, escalation.merged_into
    if gate.ended_as == Status.WITHDRAWN.value:
        return NoDecision.WITHDRAWN, ""
    if gate.resolved_at is not None:
        return NoDecision.RESOLVED, ""
    return NoDecision.NOT_EMERGENCY, gate.decision.reason if gate.decision else ""


def escalation_name(current: Loaded) -> str:
    """The escalation as people know it: our id and the source's reference (the vendor's
    text, not escaped)."""
    reference = current.escalation.reference
    return current.row.id + (f" ({reference})" if reference else "")


def human_time(at: datetime) -> str:
    """'2026-11-21 03:12 UTC': what a phone screen has room for."""
    return iso(at.timestamp())[:16].replace("T", " ") + " UTC"


def page_details(current: Loaded, settings: Settings, chat: Notices | None) -> str:
    """What the paged engineer reads first: why, who approved, where to look."""
    gate, escalation = current.gate, current.escalation
    lines = [f"Escalation {current.row.id}: {escalation.title} ({escalation.reference})"]
    if escalation.customer:
        lines.append(f"Customer: {escalation.customer}")
    if gate.decision is not None:
        lines.append(f"Why: {gate.decision.reason}")
    if gate.decided is not None:
        who = gate.decided.by or "approval timeout (policy fallback)"
        own = " (self-approved: they declared it)" if gate.decided.self_approved else ""
        lines.append(f"Approved: {gate.decided.verdict.value} by {who}{own} at "
                     f"{human_time(gate.decided.at)}")
    if escalation.declared_by is not None:
        lines.append(f"Declared by: {escalation.declared_by.label}")
    lines += [f"{name}: {url}" for name, url in links(current, settings, chat).items()]
    return "\n".join(lines)


def rfh_notice(current: Loaded, settings: Settings, chat: Notices) -> Message:
    """The channel's notice of a request for help: the source's and people's values are text,
    the links are ours."""
    gate, escalation = current.gate, current.escalation
    due = human_time(gate.rfh_due_at) if gate.rfh_due_at else "next business day"
    why = message(gate.decision.reason if gate.decision else "")
    if gate.decided is not None and gate.decided.verdict is Verdict.DECLINED:
        why = message("declined by ", mention(gate.decided.by), f": {gate.decided.reason}")
    ref = f" ({escalation.reference})" if escalation.reference else ""
    text = message(f"Request for help queued for business hours: {escalation.title}{ref}. "
                   f"Due {due}. Why not an emergency: ", why)
    found = links(current, settings, chat)
    return message(text, "\n", link_line(found)) if found else text


def unreadable_incident_notice(incident_id: str, reason: str) -> Message:
    """The approval channel hears of an incident.io incident tier2gate could not read (a
    private one: its webhook carries only the id), so nobody assumes it was looked at."""
    return message(f":warning: incident.io incident {incident_id} could not be read, so "
                   f"tier2gate cannot tell whether it needs Tier 2: {reason}. Please look at it "
                   "in incident.io.")

"""Domain -> what people read: the approval view, the page text, RFH notices."""

from __future__ import annotations

from datetime import datetime

from daemon.clock import iso
from daemon.domain.gate import Verdict
from daemon.domain.transitions import PAGE
from daemon.integrations.base import ApprovalView, Decided, DecisionKind
from daemon.jobs.escalations import Loaded
from daemon.markup import slack_link, slack_literal, slack_mention
from daemon.settings import Settings

_KIND = {Verdict.APPROVED: DecisionKind.APPROVED, Verdict.DECLINED: DecisionKind.DECLINED,
         Verdict.TIMED_OUT: DecisionKind.TIMED_OUT}


def links(current: Loaded, settings: Settings) -> dict[str, str]:
    """Source links plus the runbook and the dashboard, when they can be made into URLs."""
    found = dict(current.escalation.links)
    decision = current.gate.decision
    if decision is not None and decision.runbook and settings.runbook_base_url:
        found["runbook"] = settings.runbook_base_url.rstrip("/") + "/" + decision.runbook
    if settings.public_url:
        found["tier2gate"] = f"{settings.public_url.rstrip('/')}/#{current.row.id}"
    if current.gate.page is not None and current.gate.page.url:
        found["page"] = current.gate.page.url
    if current.gate.approval is not None:
        found["slack thread"] = slack_permalink(current.gate.approval.channel,
                                                current.gate.approval.ts)
    return found


def slack_permalink(channel: str, ts: str) -> str:
    """Slack's archive link form; it redirects into the workspace for anyone signed in."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def approval_view(current: Loaded, settings: Settings, now: datetime,
                  approvers: tuple[str, ...] | None = None, smoc_note: str | None = None
                  ) -> ApprovalView:
    gate, escalation = current.gate, current.escalation
    decision = gate.decision
    facts = decision.facts if decision else None
    decided = None
    if gate.decided is not None:
        decided = Decided(kind=_KIND[gate.decided.verdict], by=gate.decided.by,
                          at=human_time(gate.decided.at), reason=gate.decided.reason,
                          paging=gate.decided.pages)
    approval = gate.approval
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
        links={name: url for name, url in links(current, settings).items()
               if name != "slack thread"},  # the message itself
        shadow=settings.mode == "shadow",
        decided=decided,
        problem=" ".join(p.reason for p in gate.problems),
        page_failed=any(p.effect == PAGE and p.final for p in gate.problems),
    )


def human_time(at: datetime) -> str:
    """'2026-11-21 03:12 UTC': what a phone screen has room for."""
    return iso(at.timestamp())[:16].replace("T", " ") + " UTC"


def page_details(current: Loaded, settings: Settings) -> str:
    """What the paged engineer reads first: why, who approved, where to look."""
    gate, escalation = current.gate, current.escalation
    lines = [f"Escalation {current.row.id}: {escalation.title} ({escalation.reference})"]
    if escalation.customer:
        lines.append(f"Customer: {escalation.customer}")
    if gate.decision is not None:
        lines.append(f"Why: {gate.decision.reason}")
    if gate.decided is not None:
        who = gate.decided.by or "approval timeout (policy fallback)"
        lines.append(f"Approved: {gate.decided.verdict.value} by {who} at "
                     f"{human_time(gate.decided.at)}")
    lines += [f"{name}: {url}" for name, url in links(current, settings).items()]
    return "\n".join(lines)


def rfh_notice(current: Loaded, settings: Settings) -> str:
    """Slack mrkdwn: every value from the source or a person is made literal, links are ours."""
    gate, escalation = current.gate, current.escalation
    due = human_time(gate.rfh_due_at) if gate.rfh_due_at else "next business day"
    why = slack_literal(gate.decision.reason) if gate.decision else ""
    if gate.decided is not None and gate.decided.verdict is Verdict.DECLINED:
        why = (f"declined by {slack_mention(gate.decided.by)}: "
               f"{slack_literal(gate.decided.reason)}")
    ref = f" ({slack_literal(escalation.reference)})" if escalation.reference else ""
    text = (f"Request for help queued for business hours: {slack_literal(escalation.title)}"
            f"{ref}. Due {due}. Why not an emergency: {why}")
    found = links(current, settings)
    if found:
        text += "\n" + " · ".join(slack_link(url, name) for name, url in found.items())
    return text


def unreadable_incident_notice(incident_id: str, reason: str) -> str:
    """The approval channel hears of an incident.io incident tier2gate could not read (a
    private one: its webhook carries only the id), so nobody assumes it was looked at."""
    return (f":warning: incident.io incident {slack_literal(incident_id)} could not be read, "
            f"so tier2gate cannot tell whether it needs Tier 2: {slack_literal(reason)}. "
            "Please look at it in incident.io.")

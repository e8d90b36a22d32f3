"""A chat that records rendered plain text: the second `Chat`, proof that the approval flow
needs nothing of Slack.

Every message is kept in memory, in order, as plain text under an id (`ts`); buttons are text
too (`[Approve] [Decline]`, the last line while a decision is wanted). A person's press is
`press` (or `give_reason` for the decline-reason question), which returns the
`ApprovalAnswer` the approval jobs decide on; `jobs.answers.record_answer` stores it the way
the Slack ingress stores a click, so the same door (`Deciding.answer`) decides it.

It plays the approval-flow roles only (`roles`): it has no `/tier2` form, no offers to the
Escalation Engineers and no thread to read, and the daemon says so where it matters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from daemon.domain.gate import Verdict
from daemon.domain.messages import Link, Message, Strong, Text, message
from daemon.integrations.base import (
    ApprovalAnswer,
    ApprovalView,
    ChatRoles,
    Decided,
    DecisionKind,
    MessageRef,
    NoDecision,
)
from daemon.markup import plain_literal

BUTTONS = "[Approve] [Decline]"
_ANSWERS = {"Approve": Verdict.APPROVED, "Decline": Verdict.DECLINED}
_NO_DECISION = {
    NoDecision.RESOLVED: "The incident was resolved first: no decision is needed any more.",
    NoDecision.WITHDRAWN: "The incident was withdrawn: no decision is needed any more.",
    NoDecision.MERGED: "The incident was merged into another: no decision is needed any more.",
    NoDecision.NOT_EMERGENCY: "The policy no longer calls it an emergency: no decision is "
                              "needed any more.",
}


@dataclass
class TextMessage:
    """One message as people read it."""

    channel: str  # a channel, or a user id for a direct message
    ts: str
    text: str
    thread_ts: str = ""  # set: a reply under that message
    key: str = ""  # the tag `find_notice` / `find_in_thread` look for
    only_for: str = ""  # set: a user id, the only one who sees it
    escalation_id: str = ""  # set: an approval request, or its decline-reason question

    @property
    def ref(self) -> MessageRef:
        return MessageRef(self.channel, self.ts)

    @property
    def buttons(self) -> bool:
        """Whether it offers Approve / Decline now: its last line is the buttons' own."""
        return self.text.rsplit("\n", 1)[-1] == BUTTONS


class TextChat:
    """The chat roles over a list of plain-text messages. `users_by_email` and `groups` are
    who it knows: the SMOC's email, backup groups."""

    def __init__(self, users_by_email: Mapping[str, str] | None = None,
                 groups: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.messages: list[TextMessage] = []
        self._users = dict(users_by_email or {})
        self._groups = dict(groups or {})
        self._presses = 0
        self._pressed_by: dict[str, str] = {}  # trigger id -> who pressed Decline

    def roles(self) -> ChatRoles:
        return ChatRoles.of(self)

    def _post(self, message: TextMessage) -> MessageRef:
        self.messages.append(message)
        return message.ref

    def _next_ts(self) -> str:
        return f"{len(self.messages) + 1}.000"

    def _find(self, ref: MessageRef) -> TextMessage:
        for shown in self.messages:
            if shown.ref == ref:
                return shown
        raise KeyError(f"no message {ref.ts} in {ref.channel}")

    # --- ApprovalRequests ----------------------------------------------------------------

    async def post_approval(self, channel: str, view: ApprovalView) -> MessageRef:
        return self._post(TextMessage(channel, self._next_ts(), approval_text(view),
                                      escalation_id=view.escalation_id))

    async def find_approval(self, channel: str, escalation_id: str) -> MessageRef | None:
        found = [m.ref for m in self.messages if m.channel == channel and not m.thread_ts
                 and m.escalation_id == escalation_id and not m.only_for]
        return found[-1] if found else None

    async def update_approval(self, ref: MessageRef, view: ApprovalView) -> None:
        self._find(ref).text = approval_text(view)

    async def post_in_thread(self, ref: MessageRef, text: Message, key: str = "") -> MessageRef:
        return self._post(TextMessage(ref.channel, self._next_ts(), _shown(text),
                                      thread_ts=ref.ts, key=key))

    async def find_in_thread(self, ref: MessageRef, key: str) -> MessageRef | None:
        return next((m.ref for m in self.thread(ref) if key and m.key == key), None)

    async def ask_decline_reason(self, trigger_id: str, escalation_id: str, message: MessageRef
                                 ) -> None:
        who = self._pressed_by.get(trigger_id, "")
        self._post(TextMessage(message.channel, self._next_ts(),
                               "Why is this escalation declined? Answer with the reason.",
                               thread_ts=message.ts, only_for=who,
                               escalation_id=escalation_id))

    # --- Notices -------------------------------------------------------------------------

    async def post_notice(self, channel: str, text: Message, key: str = "") -> MessageRef:
        return self._post(TextMessage(channel, self._next_ts(), _shown(text), key=key))

    def notice_size(self, text: Message) -> int:
        return len(_shown(text))

    def permalink(self, ref: MessageRef) -> Link | None:
        return None  # its messages have no address anyone could open

    def is_direct(self, channel: str) -> bool:
        """A direct message is posted to the user id itself: a person it knows."""
        return channel in self._users.values() or any(
            channel in members for members in self._groups.values())

    async def find_notice(self, channel: str, key: str) -> MessageRef | None:
        return next((m.ref for m in self.messages
                     if key and m.channel == channel and m.key == key), None)

    async def tell_user(self, channel: str, user_id: str, text: Message) -> None:
        self._post(TextMessage(channel, self._next_ts(), _shown(text), only_for=user_id))

    # --- Identity ------------------------------------------------------------------------

    async def user_id_for_email(self, email: str) -> str | None:
        return self._users.get(email)

    async def group_members(self, group_id: str) -> tuple[str, ...]:
        return self._groups.get(group_id, ())

    # --- What people see and do ----------------------------------------------------------

    def thread(self, ref: MessageRef) -> list[TextMessage]:
        return [m for m in self.messages if m.channel == ref.channel and m.thread_ts == ref.ts]

    def seen_only_by(self, user_id: str) -> list[TextMessage]:
        return [m for m in self.messages if m.only_for == user_id]

    def press(self, ref: MessageRef, user_id: str, button: str) -> ApprovalAnswer:
        """`user_id` presses `button` ("Approve" or "Decline") on the approval request `ref`.
        ValueError when the message shows no such button now."""
        message = self._find(ref)
        if button not in _ANSWERS or not message.buttons:
            raise ValueError(f"message {ref.ts} shows no {button!r} button")
        self._presses += 1
        trigger_id = f"press-{self._presses}"
        self._pressed_by[trigger_id] = user_id
        return ApprovalAnswer(message.escalation_id, _ANSWERS[button], user_id, ref.channel,
                              ref.ts, f"{user_id}-{trigger_id}", trigger_id=trigger_id)

    def give_reason(self, ref: MessageRef, user_id: str, reason: str) -> ApprovalAnswer:
        """`user_id` answers the decline-reason question asked them under request `ref`.
        ValueError when they were asked none."""
        asked = [m for m in self.thread(ref) if m.only_for == user_id and m.escalation_id]
        if not asked:
            raise ValueError(f"{user_id} was asked no reason under {ref.ts}")
        return ApprovalAnswer(asked[-1].escalation_id, Verdict.DECLINED, user_id, ref.channel,
                              ref.ts, f"{user_id}-reason-{asked[-1].ts}", reason=reason)


def _shown(text: Message) -> str:
    """A message as plain text: only its mentions are `@user`; its literal text notifies
    nobody (`plain_literal`)."""
    return message(*(Text(text=plain_literal(p.text)) if isinstance(p, Text)
                     else Strong(strong=plain_literal(p.strong)) if isinstance(p, Strong)
                     else p for p in text.parts)).plain


def _line(text: str) -> str:
    """Untrusted text on one line: no name or reason can fake a line of its own (buttons) or
    a mention."""
    return plain_literal(" ".join(text.split()))


def _who(view: ApprovalView) -> str:
    people = [f"@{user}" + (" (SMOC)" if n == 0 and view.smoc_resolved else "")
              for n, user in enumerate(view.approver_ids)]
    return ", ".join(people) or "nobody"


def approval_text(view: ApprovalView) -> str:
    """The approval request rendered from the current state: the facts, then the buttons
    while a decision is wanted, else the decision or why none is needed any more."""
    lines = []
    if view.shadow:
        lines.append("SHADOW - nobody will be paged, whatever is pressed")
    if view.drill:
        lines.append("DRILL - a rehearsal: only the drill service is paged")
    lines += [f"Page Tier 2? {_line(view.title)}",
              " · ".join(_line(part) for part in (view.reference, view.customer,
                                                   view.severity) if part),
              f"Why: {_line(view.reason)}"]
    if view.criteria:
        lines.append("Criteria: " + ", ".join(view.criteria))
    if view.declarer_id or view.declarer_name:
        lines.append("Declared by: " + (f"@{view.declarer_id}" if view.declarer_id
                                        else _line(view.declarer_name)))
    lines.append(f"Who decides: {_who(view)}")
    if view.smoc_note:
        lines.append(f"Note: {_line(view.smoc_note)}")
    lines += [f"{name}: {_line(url)}" for name, url in view.links.items()]
    if view.problem:
        lines.append(f"Needs attention: {_line(view.problem)}")
    if view.decided is not None:
        lines.append(_decision(view.decided, view.shadow, view.page_failed))
    elif view.no_decision is not None:
        lines.append(_NO_DECISION[view.no_decision])
    else:
        lines.append(BUTTONS)
    return "\n".join(lines)


def _decision(decided: Decided, shadow: bool, page_failed: bool) -> str:
    if decided.kind is DecisionKind.DECLINED:
        reason = f": {_line(decided.reason)}" if decided.reason else ""
        return f"Declined by @{decided.by} at {decided.at}{reason}"
    said = (f"Approved by @{decided.by}" + (" (who declared it)" if decided.self_approved
                                              else "")
            if decided.kind is DecisionKind.APPROVED else "No decision in time")
    if not decided.paging:
        return f"{said} at {decided.at}: Tier 2 is not paged (the policy holds it)"
    if shadow:
        return f"{said} at {decided.at}: SHADOW, nobody is paged"
    if page_failed:
        return f"{said} at {decided.at}: the page did NOT go out"
    return f"{said} at {decided.at}: paging Tier 2"

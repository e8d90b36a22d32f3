"""Answers on approval requests from a chat that reads its own clicks (the text chat), stored
the way the Slack ingress stores a click: a delivery, and with it the job that decides it
(`Deciding.answered`, then the same door as Slack's, `Deciding.answer`)."""

from __future__ import annotations

from daemon.integrations.base import ApprovalAnswer
from daemon.store import Store

ANSWER = "approval_answer"  # the job kind, and the deliveries' event type
SOURCE = "chat"  # the deliveries' source: answers apart from Slack's raw interactions


async def record_answer(store: Store, answer: ApprovalAnswer) -> bool:
    """Store an answer durably with the job that decides it; False when the same answer was
    stored before (one press delivered twice is one answer). Raises `StoreUnavailable`."""
    return await store.record_delivery(SOURCE, answer.answer_id, ANSWER, answer.to_body(),
                                       ANSWER) is not None

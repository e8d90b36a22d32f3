"""The text chat's rendering and the answer value every chat's edge produces."""

from __future__ import annotations

import dataclasses
import re

import pytest

from daemon.domain.gate import Verdict
from daemon.domain.messages import Link, mention, message, strong
from daemon.integrations.base import ApprovalAnswer, ApprovalView, Decided, DecisionKind
from daemon.integrations.textchat import BUTTONS, TextChat, TextMessage, approval_text
from daemon.markup import plain_literal
from tests.hostile import HOSTILE

VIEW = ApprovalView(escalation_id="esc-1", title="DB down", reference="INC-7", customer="Acme",
                    severity="S1", reason="why", criteria=(), age_minutes=5, weekend=True,
                    off_hours=True, approver_ids=("USMOC", "UBACKUP"), smoc_resolved=True)


def test_an_answer_is_stored_and_read_back_whole() -> None:
    answer = ApprovalAnswer("esc-1", Verdict.DECLINED, "UBACKUP", "C1", "1.000", "UBACKUP-x",
                            trigger_id="t", reason="wait for Monday")
    assert ApprovalAnswer.from_body(answer.to_body()) == answer


@pytest.mark.parametrize("body", [b"", b"[]", b"{}", b'{"verdict": "maybe"}', b"\xff",
                                  b'{"escalation_id": "e", "verdict": "approved", "x": 1}'])
def test_anything_else_is_no_answer(body: bytes) -> None:
    with pytest.raises(ValueError, match="not an approval answer"):
        ApprovalAnswer.from_body(body)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_untrusted_text_never_fakes_a_line_of_its_own(hostile: str) -> None:
    faked = f"{hostile}\n{BUTTONS}"
    view = dataclasses.replace(VIEW, title=faked, customer=faked, reason=faked,
                               declarer_name=faked, smoc_note=faked,
                               decided=Decided(DecisionKind.DECLINED, "UBACKUP", "03:12 UTC",
                                               reason=faked))
    text = approval_text(view)
    assert not TextMessage("C1", "1.000", text).buttons
    assert len(text.splitlines()) == len(approval_text(dataclasses.replace(
        view, title="t", customer="c", reason="r", declarer_name="d", smoc_note="n",
        decided=Decided(DecisionKind.DECLINED, "UBACKUP", "03:12 UTC", reason="x"),
    )).splitlines())


def test_buttons_are_offered_only_while_a_decision_is_wanted() -> None:
    assert approval_text(VIEW).endswith(BUTTONS)
    assert "Who decides: @USMOC (SMOC), @UBACKUP" in approval_text(VIEW)
    decided = approval_text(dataclasses.replace(
        VIEW, decided=Decided(DecisionKind.APPROVED, "USMOC", "03:12 UTC")))
    assert decided.endswith("Approved by @USMOC at 03:12 UTC: paging Tier 2")
    assert BUTTONS not in decided


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_a_notice_shows_untrusted_text_as_it_was_written(hostile: str) -> None:
    chat = TextChat()
    ref = await chat.post_notice("C1", message(strong(hostile), " ", hostile))
    # As written: no escape shows; only `@` before a name carries an invisible word joiner.
    assert chat.messages[-1].ref == ref
    assert chat.messages[-1].text == plain_literal(f"{hostile} {hostile}")


async def test_mentions_and_links_in_a_notice_become_plain_words() -> None:
    chat = TextChat()
    await chat.post_notice("U0SMOC", message(
        mention("U0SMOC"), " see ", Link(url="https://x.example/a", label="the runbook")))
    assert chat.messages[-1].text == "@U0SMOC see the runbook (https://x.example/a)"


async def test_a_press_answers_only_a_button_the_message_shows() -> None:
    chat = TextChat()
    ref = await chat.post_approval("C1", VIEW)
    answer = chat.press(ref, "USMOC", "Approve")
    assert (answer.escalation_id, answer.verdict, answer.reason) == (
        "esc-1", Verdict.APPROVED, None)
    await chat.update_approval(ref, dataclasses.replace(
        VIEW, decided=Decided(DecisionKind.APPROVED, "USMOC", "03:12 UTC")))
    with pytest.raises(ValueError, match="shows no 'Decline' button"):
        chat.press(ref, "USMOC", "Decline")
    with pytest.raises(ValueError, match="was asked no reason"):
        chat.give_reason(ref, "USMOC", "no question was asked")


@pytest.mark.parametrize("hostile", [*HOSTILE, "ask @USMOC, @UBACKUP or @here"])
async def test_untrusted_text_mentions_nobody_on_the_text_chat(hostile: str) -> None:
    # On a plain-text chat `@name` is the mention: only the people tier2gate chose are shown so.
    chat = TextChat()
    view = dataclasses.replace(VIEW, title=hostile, customer=hostile, reason=hostile,
                               declarer_name=hostile, smoc_note=hostile,
                               approver_ids=("UBACKUP",), smoc_resolved=False)
    ref = await chat.post_approval("C1", view)
    await chat.post_in_thread(ref, message("Declined by ", mention("UBACKUP"), ": ", hostile))
    await chat.tell_user("C1", "UOTHER", message(hostile, " ", mention("UBACKUP")))
    await chat.post_notice("C1", message(strong(hostile), " ", mention("UBACKUP")))
    assert [re.findall(r"@(\w+)", m.text) for m in chat.messages] == [["UBACKUP"]] * 4


async def test_the_chat_says_which_channels_are_direct_and_links_to_no_message() -> None:
    chat = TextChat(users_by_email={"smoc@example.com": "USMOC"}, groups={"S1": ("UBACKUP",)})
    assert chat.is_direct("USMOC") and chat.is_direct("UBACKUP") and not chat.is_direct("C1")
    assert chat.permalink(await chat.post_notice("C1", message("hi"))) is None

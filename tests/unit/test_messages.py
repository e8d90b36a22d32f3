"""Chat messages: the domain words facts, the Slack adapter renders them; typed effect payloads
and the jobs stored by the version before them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from daemon.domain.effects import (
    Attention,
    Effect,
    EffectKind,
    Remind,
    TellUser,
    ThreadNote,
    payload_json,
)
from daemon.domain.gate import Gate
from daemon.domain.messages import Link, Message, mention, mentions, message, strong
from daemon.markup import message_from_mrkdwn, slack_literal, slack_mrkdwn
from daemon.store import Job, JobState
from daemon.store.payloads import effect_payload
from tests.hostile import HOSTILE

DOMAIN = Path(__file__).resolve().parents[2] / "daemon" / "domain"
USERS_WRITE = re.compile(
    r"slack_channels|\"slack\"|source: slack|`slack`|slack\.(?:approval|rfh)_channel")
"""Names people write and keep as they know them: the policy's `recognised_by.slack_channels`,
the stored and policy value of `Source.CHAT` and the settings' `slack` section and keys."""


SLACK_SYNTAX = re.compile(r"slack|<[@#]|<!(?!--)|<https?:", re.IGNORECASE)
"""Slack's name and its markup: a mention `<@U…>`, a channel `<#C…>`, `<!here>`/`<!channel>`
(not an HTML comment `<!--`, which retro issues hold) and a link `<url|label>`."""


def _slack_lines(text: str) -> list[tuple[int, str]]:
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if SLACK_SYNTAX.search(USERS_WRITE.sub("", line))]


def test_the_domain_speaks_no_chat_markup_or_slack_vocabulary() -> None:
    found = [f"{path.name}:{n}: {line}" for path in sorted(DOMAIN.rglob("*.py"))
             for n, line in _slack_lines(path.read_text(encoding="utf-8"))]
    assert found == []


def test_the_vocabulary_guard_catches_every_kind_of_slack_markup() -> None:
    snippet = '''text = message("<!here> Tier 2 was paged")
note = f"see <#C0APPROVALS> or <https://runbook|the runbook>"
said = "<@" + user + ">"
_COMMENT = re.compile(r"<!--.*?-->")
channels = policy.recognised_by.slack_channels
'''
    assert [n for n, _line in _slack_lines(snippet)] == [1, 2, 3]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_slack_renders_text_literally_and_only_mentions_we_chose(hostile: str) -> None:
    said = message("Declined: ", hostile, " by ", mention("USMOC"))
    assert slack_mrkdwn(said) == f"Declined: {slack_literal(hostile)} by <@USMOC>"
    assert said.plain == f"Declined: {hostile} by @USMOC"


def test_mentions_links_and_plain_text() -> None:
    assert slack_mrkdwn(mentions(["U1", "U2"], " or ")) == "<@U1> or <@U2>"
    assert slack_mrkdwn(mention("not a user <!here>")) == "not a user &lt;!here&gt;"
    assert mentions([]) == Message() and not mentions([])
    link = message("The retro ", Link(url="https://git.example/1?a=b|c", label="issue"))
    assert slack_mrkdwn(link) == "The retro <https://git.example/1?a=b%7Cc|issue>"
    assert link.plain == "The retro issue (https://git.example/1?a=b|c)"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_text_stored_as_mrkdwn_by_the_previous_version_reads_back_as_it_was(hostile: str
                                                                             ) -> None:
    stored = f":rotating_light: {slack_literal(hostile)}\n<@USMOC> <@UBACKUP>"
    read = message_from_mrkdwn(stored)
    assert slack_mrkdwn(read) == stored
    assert read.mentioned == ("USMOC", "UBACKUP")


def _job(kind: EffectKind, payload: dict[str, object]) -> Job:
    return Job(id=1, kind=kind, key=f"{kind}:esc-1:x", payload=payload, escalation_id="esc-1",
               state=JobState.QUEUED, run_at=0.0, attempts=0, last_error="", lease_owner=None,
               lease_until=None, created_at=0.0, updated_at=0.0)


def test_a_pending_job_from_the_previous_version_still_runs() -> None:
    old = _job(EffectKind.TELL_USER, {"round": 2, "user": "UOTHER", "text": (
        "Only the Support Manager on Call or a backup approver (<@USMOC> or <@UBACKUP>) can "
        "decide this.")})
    told = effect_payload(old, TellUser)
    assert told.user == "UOTHER" and told.channel == ""
    assert slack_mrkdwn(told.text) == old.payload["text"]
    assert effect_payload(_job(EffectKind.REMIND, {"n": 2}), Remind) == Remind(n=2)


def test_payloads_are_stored_as_json_and_read_back() -> None:
    note = Effect(EffectKind.THREAD_NOTE, "paged",
                  ThreadNote(text=message("Paged Tier 2: ", mention("U1"))))
    stored = payload_json(note.payload)
    assert stored == {"text": {"parts": [{"text": "Paged Tier 2: "}, {"mention": "U1"}]}}
    assert effect_payload(_job(EffectKind.THREAD_NOTE, stored), ThreadNote) == note.payload


def test_an_effect_takes_only_its_kinds_payload() -> None:
    with pytest.raises(TypeError, match="takes ThreadNote"):
        Effect(EffectKind.THREAD_NOTE, "x", Remind(n=1))
    with pytest.raises(ValidationError):
        Effect(EffectKind.THREAD_NOTE, "x")  # a note says something
    assert Effect(EffectKind.REMIND, "1").payload == Remind()


def test_a_gate_stored_by_the_previous_version_reads_its_message_ids() -> None:
    stored = {"phase": "awaiting_approval", "approval": {
        "requested_at": "2026-11-21T03:00:00Z", "channel": "C1", "ts": "1.1",
        "copies": [["D1", "2.2"]], "approvers": ["USMOC"]},
        "ee": {"rotation": "r1", "offered_at": "2026-11-21T03:00:00Z", "channel": "C0EE",
               "ts": "3.3"}}
    gate = Gate.model_validate(stored)
    assert gate.approval is not None and gate.approval.message_id == "1.1"
    assert gate.owns_message("D1", "2.2") and gate.ee is not None
    assert gate.ee.message_id == "3.3"
    again = gate.model_dump(mode="json")
    assert again["approval"]["message_id"] == "1.1" and "ts" not in again["approval"]
    assert Gate.model_validate(again) == gate


@pytest.mark.parametrize("kind", [EffectKind.THREAD_NOTE, EffectKind.ATTENTION])
def test_a_link_stored_as_mrkdwn_by_the_previous_version_stays_a_link(kind: EffectKind) -> None:
    # The previous version's retro reminder (a thread note, or the failure notice passing it
    # on), worded with `slack_link`: its link must not come back as escaped text.
    stored = (":memo: The retro <https://git.example/g/p/-/issues/7?a=1&amp;b=%7C|issue> has "
              "been open for 3 days. `Ann &amp; &lt;@U1&gt;` (assignee): please finish it. "
              "Still to fill in: Timeline.")
    if kind == EffectKind.THREAD_NOTE:
        text: Message | None = effect_payload(_job(kind, {"text": stored}), ThreadNote).text
    else:
        text = effect_payload(_job(kind, {"kind": "thread_note", "error": "HTTP 500",
                                          "final": True, "job_id": 7, "text": stored}),
                              Attention).text
    assert text is not None and slack_mrkdwn(text) == stored
    assert Link(url="https://git.example/g/p/-/issues/7?a=1&b=%7C", label="issue") in text.parts
    assert text.plain.startswith(":memo: The retro issue (https://") and "&amp;" not in text.plain


@pytest.mark.parametrize("hostile", HOSTILE)
def test_strong_text_is_bold_in_slack_and_as_written_in_plain_text(hostile: str) -> None:
    said = message(strong(hostile), " by ", mention("USMOC"))
    assert slack_mrkdwn(said) == f"*{slack_literal(hostile)}* by <@USMOC>"
    assert said.plain == f"{hostile} by @USMOC"
    assert strong("") == Message()

"""Text people type is bounded by Slack's own inputs: the modals say `max_length`, and a
submission or command over it (one not made by Slack's form) is refused, the modal's way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from daemon.integrations.base import EscalationFormSpec, MessageRef
from daemon.integrations.slack import decline_modal
from daemon.integrations.slack_forms import escalation_modal
from daemon.sources.fields import PayloadError
from daemon.sources.slack import (
    SLASH_TEXT_MAX_CHARS,
    DeclineReasonSubmitted,
    EscalationFormSubmitted,
    InvalidInput,
    parse_interaction,
    parse_slash_command,
)
from daemon.sources.slack_ids import (
    CRITERIA,
    CUSTOMER,
    CUSTOMER_MAX_CHARS,
    DECLINE_ACTION,
    DECLINE_CALLBACK,
    DETAILS,
    DETAILS_MAX_CHARS,
    ESCALATE_CALLBACK,
    REASON_ACTION,
    REASON_BLOCK,
    REASON_MAX_CHARS,
    SEVERITY,
    TITLE,
    TITLE_MAX_CHARS,
)
from tests.world import BACKUP, button, decline_form, emergency, world


def _decline(reason: str) -> bytes:
    view = {"id": "V1", "callback_id": DECLINE_CALLBACK, "private_metadata": json.dumps(
        {"escalation_id": "esc-1", "channel": "C1", "ts": "1.000100"}),
        "state": {"values": {REASON_BLOCK: {REASON_ACTION: {"value": reason}}}}}
    payload = {"type": "view_submission", "user": {"id": "U1"}, "view": view}
    return ("payload=" + quote(json.dumps(payload))).encode()


def _escalation(title: str, customer: str, details: str) -> bytes:
    values = {TITLE[0]: {TITLE[1]: {"value": title}},
              CUSTOMER[0]: {CUSTOMER[1]: {"value": customer}},
              SEVERITY[0]: {SEVERITY[1]: {"selected_option": {"value": "S1"}}},
              CRITERIA[0]: {CRITERIA[1]: {"selected_options": []}},
              DETAILS[0]: {DETAILS[1]: {"value": details}}}
    payload = {"type": "view_submission", "user": {"id": "U1"},
               "view": {"id": "V1", "callback_id": ESCALATE_CALLBACK,
                        "state": {"values": values}}}
    return ("payload=" + quote(json.dumps(payload))).encode()


def _inputs(view: dict[str, Any]) -> dict[str, int | None]:
    """Each input block's `max_length`."""
    return {block["block_id"]: block["element"].get("max_length")
            for block in view["blocks"] if block["type"] == "input"}


def test_the_modals_say_the_limits() -> None:
    decline = decline_modal("esc-1", MessageRef("C1", "1.0")).to_dict()
    assert _inputs(decline) == {REASON_BLOCK: REASON_MAX_CHARS}
    form = escalation_modal(EscalationFormSpec(severities=("S1",), criteria=(), title="")
                            ).to_dict()
    limits = _inputs(form)
    assert (limits[TITLE[0]], limits[CUSTOMER[0]], limits[DETAILS[0]]) == (
        TITLE_MAX_CHARS, CUSTOMER_MAX_CHARS, DETAILS_MAX_CHARS)


def test_a_decline_reason_up_to_the_limit_is_taken_and_a_longer_one_refused() -> None:
    taken = parse_interaction(_decline("x" * REASON_MAX_CHARS))
    assert isinstance(taken, DeclineReasonSubmitted) and len(taken.reason) == REASON_MAX_CHARS
    with pytest.raises(InvalidInput) as refused:
        parse_interaction(_decline("x" * (REASON_MAX_CHARS + 1)))
    assert list(refused.value.errors) == [REASON_BLOCK]
    assert str(REASON_MAX_CHARS) in refused.value.errors[REASON_BLOCK]


def test_escalation_form_fields_over_their_limits_are_named() -> None:
    assert isinstance(parse_interaction(_escalation(
        "t" * TITLE_MAX_CHARS, "c" * CUSTOMER_MAX_CHARS, "d" * DETAILS_MAX_CHARS)),
        EscalationFormSubmitted)
    with pytest.raises(InvalidInput) as refused:
        parse_interaction(_escalation("t" * (TITLE_MAX_CHARS + 1),
                                      "c" * (CUSTOMER_MAX_CHARS + 1),
                                      "d" * (DETAILS_MAX_CHARS + 1)))
    assert sorted(refused.value.errors) == sorted([TITLE[0], CUSTOMER[0], DETAILS[0]])


def _command(text: str) -> bytes:
    return urlencode({"user_id": "U1", "channel_id": "C1", "text": text,
                      "trigger_id": "t", "response_url": "https://hooks.slack.com/x"}).encode()


def test_a_slash_command_longer_than_slack_can_send_is_refused() -> None:
    assert parse_slash_command(_command("x" * SLASH_TEXT_MAX_CHARS)).text
    with pytest.raises(PayloadError):
        parse_slash_command(_command("x" * (SLASH_TEXT_MAX_CHARS + 1)))


async def test_an_over_long_decline_reason_is_shown_in_the_modal_and_decides_nothing(
        tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        await w.daemon.slack_interaction(button(esc_id, BACKUP, DECLINE_ACTION, ts, "3.001"))
        await w.daemon.settle()
        response = await w.daemon.slack_interaction(
            decline_form(esc_id, BACKUP, ts, "x" * (REASON_MAX_CHARS + 1)))
        assert response.status == 200
        answer = await response.json()
        assert (answer["response_action"], list(answer["errors"])) == ("errors", [REASON_BLOCK])
        await w.daemon.settle()
        assert "declined" not in await w.daemon.events(esc_id)

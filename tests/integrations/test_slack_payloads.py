"""Inbound Slack bodies: the published samples, our own buttons and form, and garbage."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.domain.gate import Verdict
from daemon.sources.fields import PayloadError
from daemon.sources.slack import (
    ApprovalClick,
    DeclineReasonSubmitted,
    InvalidInput,
    SlashCommand,
    parse_interaction,
    parse_slash_command,
)
from daemon.sources.slack_ids import (
    APPROVE_ACTION,
    CUSTOMER,
    DECLINE_ACTION,
    DECLINE_CALLBACK,
    REASON_ACTION,
    REASON_BLOCK,
    SEVERITY,
    TITLE,
)

SAMPLES = Path(__file__).parents[1] / "payloads" / "slack"


def sample(name: str) -> dict[str, Any]:
    body = json.loads((SAMPLES / name).read_bytes())
    assert isinstance(body, dict)
    return body


def form(payload: object) -> bytes:
    """How Slack delivers interactivity: one form field `payload` holding JSON."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def our_click(name: str, action_id: str) -> dict[str, Any]:
    payload = sample(name)
    payload["actions"][0].update(action_id=action_id, value="esc-7f3k")
    return payload


def our_submission(reason: str = "  known bug, fix ships Monday \n",
                   metadata: str | None = None) -> dict[str, Any]:
    payload = sample("bolt_python_view_submission.json")
    view = payload["view"]
    view["callback_id"] = DECLINE_CALLBACK
    view["private_metadata"] = metadata if metadata is not None else json.dumps(
        {"escalation_id": "esc-7f3k", "channel": "C0APPROVE", "ts": "1700000000.000100"})
    view["state"]["values"] = {REASON_BLOCK: {REASON_ACTION: {"type": "plain_text_input",
                                                              "value": reason}}}
    return payload


@pytest.mark.parametrize("name", [
    "bolt_python_block_actions_button.json",
    "bolt_python_block_actions_with_message.json",
    "bolt_python_view_submission.json",
])
def test_the_published_samples_are_other_apps_interactions(name: str) -> None:
    assert parse_interaction(form(sample(name))) is None


def test_approve_click_on_the_published_sample() -> None:
    body = form(our_click("bolt_python_block_actions_button.json", APPROVE_ACTION))

    assert parse_interaction(body) == ApprovalClick(
        escalation_id="esc-7f3k", verdict=Verdict.APPROVED, user_id="W111",
        user_name="primary-owner",
        trigger_id="111.222.valid", channel="C111", message_ts="111.222",
        action_ts="1596530385.194939")


def test_decline_click_from_a_user_without_a_name() -> None:
    body = form(our_click("bolt_python_block_actions_with_message.json", DECLINE_ACTION))

    assert parse_interaction(body) == ApprovalClick(
        escalation_id="esc-7f3k", verdict=Verdict.DECLINED, user_id="U111", user_name="",
        trigger_id="4916855695380.xxx.yyy", channel="C111", message_ts="1678252213.679169",
        action_ts="1678252216.469172")


@pytest.mark.parametrize("reason", ["", "   ", " \n\t "])
def test_a_blank_decline_reason_is_invalid_input_for_the_reason_block(reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_interaction(form(our_submission(reason=reason)))
    assert list(caught.value.errors) == [REASON_BLOCK]


def test_decline_reason_from_our_form() -> None:
    assert parse_interaction(form(our_submission())) == DeclineReasonSubmitted(
        escalation_id="esc-7f3k", user_id="W111", user_name="primary-owner",
        reason="known bug, fix ships Monday", channel="C0APPROVE",
        message_ts="1700000000.000100")


@pytest.mark.parametrize("kind", ["block_suggestion", "view_closed", "shortcut",
                                  "message_action", None])
def test_other_interaction_types_are_ignored(kind: str | None) -> None:
    payload = our_click("bolt_python_block_actions_button.json", APPROVE_ACTION)
    payload["type"] = kind

    assert parse_interaction(form(payload)) is None


def _without(payload: dict[str, Any], *path: str | int) -> dict[str, Any]:
    node: Any = payload  # objects and lists, as the path walks them
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return payload


BUTTON = "bolt_python_block_actions_button.json"


@pytest.mark.parametrize("body", [
    pytest.param(b"", id="empty"),
    pytest.param(b"payload", id="no equals sign"),
    pytest.param(b"\xff\xfepayload=%7B%7D", id="not utf-8"),
    pytest.param(b"user_id=U1", id="no payload field"),
    pytest.param(b"payload=%7B%7D&payload=%7B%7D", id="payload twice"),
    pytest.param(b"payload=%7B", id="payload not json"),
    pytest.param(b"payload=" + b"%5B" * 100_000, id="json nested too deep"),
    pytest.param(b"payload=%5B%5D", id="payload a list"),
    pytest.param(b"&".join([b"a=1"] * 101), id="too many fields"),
    pytest.param(form({"type": "block_actions"}), id="no actions"),
    pytest.param(form({"type": "block_actions", "actions": ["x"]}), id="action not an object"),
    pytest.param(form(_without(our_click(BUTTON, APPROVE_ACTION), "actions", 0, "value")),
                 id="no escalation id"),
    pytest.param(form(_without(our_click(BUTTON, APPROVE_ACTION), "user", "id")), id="no user"),
    pytest.param(form(_without(our_click(BUTTON, APPROVE_ACTION), "trigger_id")),
                 id="no trigger"),
    pytest.param(form(_without(our_click(BUTTON, APPROVE_ACTION), "container")),
                 id="no container"),
    pytest.param(form(_without(our_click(BUTTON, APPROVE_ACTION), "actions", 0, "action_ts")),
                 id="no action_ts"),
    pytest.param(form(our_submission(metadata="esc-7f3k")), id="metadata not json"),
    pytest.param(form(our_submission(metadata="[]")), id="metadata a list"),
    pytest.param(form(our_submission(metadata='{"escalation_id": "esc-1"}')),
                 id="metadata without message"),
    pytest.param(form(_without(our_submission(), "user")), id="submission without user"),
])
def test_malformed_interactions_are_payload_errors(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_interaction(body)


def test_slash_command_sample() -> None:
    body = (SAMPLES / "bolt_python_slash_command.form").read_bytes()

    assert parse_slash_command(body) == SlashCommand(
        user_id="W111", user_name="primary-owner", channel_id="C111", text="Hi",
        trigger_id="111.111.xxx",
        response_url="https://hooks.slack.com/commands/T111/111/xxxxx")


def test_slash_command_with_no_text() -> None:
    body = urlencode({"user_id": "U1", "channel_id": "C1", "text": "", "trigger_id": "t.1",
                      "response_url": "https://hooks.slack.com/commands/x"}).encode()

    assert parse_slash_command(body).text == ""


@pytest.mark.parametrize("body", [
    b"user_id=U1&channel_id=C1&trigger_id=t.1",
    b"user_id=U1&user_id=U2&channel_id=C1&trigger_id=t.1&response_url=https%3A%2F%2Fx",
    b"\x80",
])
def test_malformed_slash_commands_are_payload_errors(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_slash_command(body)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=20,
)
SHAPED = st.fixed_dictionaries(
    {"type": st.sampled_from(["block_actions", "view_submission", "x"])},
    optional={
        "actions": st.lists(st.fixed_dictionaries(
            {"action_id": st.sampled_from([APPROVE_ACTION, DECLINE_ACTION, "a"])},
            optional={"value": JSON, "action_ts": JSON}), max_size=2) | JSON,
        "user": JSON, "container": JSON, "trigger_id": JSON,
        "view": st.fixed_dictionaries({"callback_id": st.just(DECLINE_CALLBACK)},
                                      optional={"private_metadata": JSON.map(json.dumps) | JSON,
                                                "state": JSON}) | JSON,
    },
)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_raise_payload_error(body: bytes) -> None:
    with contextlib.suppress(PayloadError):
        assert isinstance(parse_interaction(body), ApprovalClick | DeclineReasonSubmitted | None)
    with contextlib.suppress(PayloadError):
        assert isinstance(parse_slash_command(body), SlashCommand)


@given(JSON | SHAPED)
def test_arbitrary_json_payloads_only_ever_raise_payload_error(payload: object) -> None:
    with contextlib.suppress(PayloadError):
        assert isinstance(parse_interaction(form(payload)),
                          ApprovalClick | DeclineReasonSubmitted | None)


def _escalation_submission(title: str, criteria: list[str], customer: str = " Initech ",
                           severity: str = "S2") -> bytes:
    from daemon.sources.slack_ids import CRITERIA, ESCALATE_CALLBACK

    selected = {"selected_option": {"value": severity}} if severity else {}
    payload = {
        "type": "view_submission", "user": {"id": "U1", "username": "sam"},
        "view": {"id": "V123", "callback_id": ESCALATE_CALLBACK, "state": {"values": {
            TITLE[0]: {TITLE[1]: {"type": "plain_text_input", "value": title}},
            CUSTOMER[0]: {CUSTOMER[1]: {"type": "plain_text_input", "value": customer}},
            SEVERITY[0]: {SEVERITY[1]: selected},
            CRITERIA[0]: {CRITERIA[1]: {"selected_options": [{"value": c} for c in criteria]}},
        }}},
    }
    return ("payload=" + quote(json.dumps(payload))).encode()


def test_the_escalation_form_is_read_in_domain_terms() -> None:
    from daemon.sources.slack import EscalationFormSubmitted

    form = parse_interaction(_escalation_submission(" DB down ", ["recovery_deadline"]))
    assert form == EscalationFormSubmitted(view_id="V123", user_id="U1", user_name="sam",
                                           title="DB down", customer="Initech", severity="S2",
                                           criteria=("recovery_deadline",), details="")


@pytest.mark.parametrize(("title", "customer", "severity", "blocks"), [
    pytest.param("   ", "Initech", "S2", [TITLE[0]], id="blank title"),
    pytest.param("DB down", " ", "S2", [CUSTOMER[0]], id="blank customer"),
    pytest.param("DB down", "Initech", "", [SEVERITY[0]], id="no severity"),
    pytest.param("", "", "", [TITLE[0], CUSTOMER[0], SEVERITY[0]], id="all at once"),
])
def test_an_escalation_form_missing_a_required_value_is_invalid_input(
    title: str, customer: str, severity: str, blocks: list[str]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_interaction(_escalation_submission(title, [], customer, severity))
    assert list(caught.value.errors) == blocks
    assert all(caught.value.errors.values())

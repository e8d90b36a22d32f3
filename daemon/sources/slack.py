"""Slack interactivity and slash-command bodies -> typed inbound values, parsed at the edge.

The ingress handler verifies the signature on the raw bytes and hands them here; the job that
acts on a stored delivery reads it back with the same functions. Only clicks on our own buttons
and submissions of our own forms become values; everything else Slack sends to the app (other
buttons, menus, modal closes) is None, so the caller just acks it. `PayloadError` is the only
exception: the caller answers 400 whatever the bytes were, except for its `InvalidInput` kind, a
well-formed submission of our own form with a value the person has to fix, which the caller
shows in the form itself.

The values name no Slack structure (no block, action or view ids): `ApprovalClick` is what any
chat that shows the approval request delivers when an approver presses Approve or Decline, so a
second chat's parser returns the same value and `jobs.approval` decides it the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

from daemon.domain.gate import Verdict
from daemon.sources.fields import PayloadError, decode_json
from daemon.sources.slack_ids import (
    APPROVE_ACTION,
    CRITERIA,
    CUSTOMER,
    CUSTOMER_MAX_CHARS,
    DECLINE_ACTION,
    DECLINE_CALLBACK,
    DETAILS,
    DETAILS_MAX_CHARS,
    ENGINEERING_ACTION,
    ESCALATE_CALLBACK,
    EVIDENCE_ACTION,
    EVIDENCE_MAX_CHARS,
    EVIDENCE_PREFIX,
    REASON_ACTION,
    REASON_BLOCK,
    REASON_MAX_CHARS,
    RESOLVED_ACTION,
    SEVERITY,
    TAKE_ACTION,
    TITLE,
    TITLE_MAX_CHARS,
)

INTERACTION = "slack_interaction"
"""Job kind of a stored click or form submission (`jobs.approval.Approvals.interaction`)."""
COMMAND = "slack_command"
"""Job kind of a stored `/tier2` command (`jobs.approval.Approvals.open_form`)."""

_EE_ACTIONS: dict[str, Literal["take", "resolved", "engineering"]] = {
    TAKE_ACTION: "take",
    RESOLVED_ACTION: "resolved",
    ENGINEERING_ACTION: "engineering",
}
_VERDICTS = {APPROVE_ACTION: Verdict.APPROVED, DECLINE_ACTION: Verdict.DECLINED}
_MAX_FORM_FIELDS = 100
_CHANNEL_ID = r"[CGD][A-Z0-9]{2,}"  # Slack conversation ids: public, private, direct
SLASH_TEXT_MAX_CHARS = 40_000
"""Slack documents no limit of its own for a slash command's text; it is typed into the
message composer, whose messages Slack cuts at 40,000 characters (`integrations.slack`
`TEXT_MAX_CHARS`), so a longer text does not come from a Slack client."""


class InvalidInput(PayloadError):
    """A submission of one of our modals that the person must correct before we can act on it.

    `errors` maps the block id of each offending input block to the message Slack shows under
    it. Still a `PayloadError`: nothing may act on such a submission.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid input in " + ", ".join(sorted(errors)))
        self.errors = errors


@dataclass(frozen=True)
class ApprovalClick:
    """Approve or Decline pressed on an approval request (the channel's post or a
    direct-message copy), by any chat.

    `escalation_id` is what the button names; `(channel, message_ts)` is the message it was on,
    which `jobs.approval` checks against the messages the escalation recorded; `action_ts` makes
    the click's id (a press repeated by the chat is one click). `trigger_id` is the chat's
    short-lived handle (Slack: ~3 s) to open the decline-reason form from; "" when the chat
    asks for the reason otherwise.
    """

    escalation_id: str
    verdict: Verdict  # APPROVED or DECLINED, never TIMED_OUT
    user_id: str
    user_name: str
    channel: str
    message_ts: str
    action_ts: str
    trigger_id: str = ""


@dataclass(frozen=True)
class EEOfferClick:
    """An Escalation Engineer's button on an offer (`channel`, `message_ts`): take it, or end
    the EE step as resolved without Engineering or as needing Engineering."""

    escalation_id: str
    action: Literal["take", "resolved", "engineering"]
    user_id: str
    user_name: str
    channel: str
    message_ts: str
    action_ts: str


@dataclass(frozen=True)
class DeclineReasonSubmitted:
    """The decline form submitted: the reason for declining the request on `(channel,
    message_ts)`, stripped, 1 to `REASON_MAX_CHARS` characters."""

    escalation_id: str
    user_id: str
    user_name: str
    reason: str
    channel: str
    message_ts: str


@dataclass(frozen=True)
class SlashCommand:
    """`/tier2 [text]` typed in `channel_id`."""

    user_id: str
    user_name: str
    channel_id: str
    text: str
    trigger_id: str
    response_url: str


@dataclass(frozen=True)
class EscalationFormSubmitted:
    """A support engineer declared an escalation with the `/tier2` form; required values are
    non-blank and within the form's caps."""

    view_id: str
    user_id: str
    user_name: str
    title: str
    customer: str
    severity: str
    criteria: tuple[str, ...]
    details: str
    evidence: tuple[tuple[str, str], ...] = ()  # (field name, answer) of the answered ones
    channel: str = ""  # where `/tier2` was used (the form's metadata), if Slack said


Interaction = ApprovalClick | DeclineReasonSubmitted | EscalationFormSubmitted | EEOfferClick


def parse_interaction(body: bytes) -> Interaction | None:
    """Our button click, decline reason or escalation form in `payload=<json>`; None for
    anything else."""
    payload = _json_object(_one(_form(body), "payload"), "payload")
    kind = payload.get("type")
    if kind == "block_actions":
        return _button_click(payload)
    if kind == "view_submission":
        if _text(_obj(payload, "view"), "callback_id") == ESCALATE_CALLBACK:
            return _escalation_form(payload)
        return _decline_reason(payload)
    return None


def parse_slash_command(body: bytes) -> SlashCommand:
    form = _form(body)
    if len(_one(form, "text", required=False)) > SLASH_TEXT_MAX_CHARS:
        raise PayloadError(f"command text is longer than {SLASH_TEXT_MAX_CHARS} characters")
    return SlashCommand(
        user_id=_one(form, "user_id"),
        user_name=_one(form, "user_name", required=False),
        channel_id=_one(form, "channel_id"),
        text=_one(form, "text", required=False),
        trigger_id=_one(form, "trigger_id"),
        response_url=_one(form, "response_url"),
    )


def _button_click(payload: dict[str, Any]) -> ApprovalClick | EEOfferClick | None:
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise PayloadError("block_actions without actions")
    action = actions[0]
    user = _obj(payload, "user")
    container = _obj(payload, "container")
    ee_action = _EE_ACTIONS.get(_text(action, "action_id"))
    if ee_action is not None:
        return EEOfferClick(action=ee_action, **_pressed(action, user, container))
    verdict = _VERDICTS.get(_text(action, "action_id"))
    if verdict is None:
        return None
    return ApprovalClick(verdict=verdict,
                         trigger_id=_required(_text(payload, "trigger_id"), "trigger_id"),
                         **_pressed(action, user, container))


def _pressed(action: dict[str, Any], user: dict[str, Any], container: dict[str, Any]
             ) -> dict[str, str]:
    """What every button press names: the escalation, who pressed, and on which message."""
    return {
        "escalation_id": _required(_text(action, "value"), "actions[0].value"),
        "user_id": _required(_text(user, "id"), "user.id"),
        "user_name": _user_name(user),
        "channel": _required(_text(container, "channel_id"), "container.channel_id"),
        "message_ts": _required(_text(container, "message_ts"), "container.message_ts"),
        "action_ts": _required(_text(action, "action_ts"), "actions[0].action_ts"),
    }


def _decline_reason(payload: dict[str, Any]) -> DeclineReasonSubmitted | None:
    view = _obj(payload, "view")
    if _text(view, "callback_id") != DECLINE_CALLBACK:
        return None
    metadata = _json_object(_text(view, "private_metadata"), "view.private_metadata")
    field = _obj(_obj(_obj(_obj(view, "state"), "values"), REASON_BLOCK), REASON_ACTION)
    user = _obj(payload, "user")
    decline = DeclineReasonSubmitted(
        escalation_id=_required(_text(metadata, "escalation_id"), "metadata escalation_id"),
        user_id=_required(_text(user, "id"), "user.id"),
        user_name=_user_name(user),
        # Slack's own check for a required input lets a reason of only spaces through.
        reason=_text(field, "value").strip(),
        channel=_required(_text(metadata, "channel"), "metadata channel"),
        message_ts=_required(_text(metadata, "ts"), "metadata ts"),
    )
    if not decline.reason:
        raise InvalidInput({REASON_BLOCK: "Say in a few words why this does not need Tier 2."})
    if len(decline.reason) > REASON_MAX_CHARS:
        raise InvalidInput({REASON_BLOCK: _too_long(REASON_MAX_CHARS)})
    return decline


def _escalation_form(payload: dict[str, Any]) -> EscalationFormSubmitted:
    view = _obj(payload, "view")
    values = _obj(_obj(view, "state"), "values")

    def field(where: tuple[str, str]) -> dict[str, Any]:
        return _obj(_obj(values, where[0]), where[1])

    selected = field(CRITERIA).get("selected_options")
    criteria = tuple(
        _text(option, "value") for option in (selected if isinstance(selected, list) else [])
        if isinstance(option, dict) and _text(option, "value")
    )
    user = _obj(payload, "user")
    # Our own modal's metadata names the channel; a form opened before it did names none.
    metadata = _text(view, "private_metadata")
    channel = _text(_json_object(metadata, "view.private_metadata"), "channel") if metadata \
        else ""
    form = EscalationFormSubmitted(
        view_id=_required(_text(view, "id"), "view.id"),
        user_id=_required(_text(user, "id"), "user.id"),
        user_name=_user_name(user),
        title=_text(field(TITLE), "value").strip(),
        customer=_text(field(CUSTOMER), "value").strip(),
        severity=_text(_obj(field(SEVERITY), "selected_option"), "value"),
        criteria=criteria,
        details=_text(field(DETAILS), "value").strip(),
        evidence=tuple(
            (block_id.removeprefix(EVIDENCE_PREFIX), answer)
            for block_id, block in sorted(values.items())
            if isinstance(block_id, str) and block_id.startswith(EVIDENCE_PREFIX)
            and (answer := _text(_obj(block, EVIDENCE_ACTION), "value").strip())),
        channel=channel if re.fullmatch(_CHANNEL_ID, channel) else "",
    )
    # The inputs the modal marks required; Slack lets a value of only spaces through.
    required = ((TITLE, form.title, "Say what is wrong."),
                (CUSTOMER, form.customer, "Name the customer."),
                (SEVERITY, form.severity, "Choose a severity."))
    errors = {where[0]: message for where, value, message in required if not value}
    # Slack's form enforces the same `max_length`; a request built by hand is not bound by it.
    bounded = ((TITLE, form.title, TITLE_MAX_CHARS), (CUSTOMER, form.customer, CUSTOMER_MAX_CHARS),
               (DETAILS, form.details, DETAILS_MAX_CHARS))
    errors.update({where[0]: _too_long(limit) for where, value, limit in bounded
                   if len(value) > limit})
    errors.update({EVIDENCE_PREFIX + name: _too_long(EVIDENCE_MAX_CHARS)
                   for name, answer in form.evidence if len(answer) > EVIDENCE_MAX_CHARS})
    if errors:
        raise InvalidInput(errors)
    return form


def _too_long(limit: int) -> str:
    return f"Please keep it to {limit} characters."


def _form(body: bytes) -> dict[str, list[str]]:
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                        max_num_fields=_MAX_FORM_FIELDS)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise PayloadError(f"body is not form-encoded UTF-8: {type(exc).__name__}") from None


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = decode_json(text.encode("utf-8", "surrogatepass"))
    except PayloadError as exc:
        raise PayloadError(f"{what} is not JSON we accept: {exc}") from None
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is not a JSON object")
    return value


def _one(form: dict[str, list[str]], name: str, *, required: bool = True) -> str:
    values = form.get(name, [])
    if len(values) > 1:
        raise PayloadError(f"form field {name} is given {len(values)} times")
    if not values and required:
        raise PayloadError(f"form field {name} is missing")
    return values[0] if values else ""


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested object, or {} when absent or of another type (Slack omits what does not apply)."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _required(value: str, what: str) -> str:
    if not value:
        raise PayloadError(f"{what} is missing")
    return value


def _user_name(user: dict[str, Any]) -> str:
    return _text(user, "username") or _text(user, "name")

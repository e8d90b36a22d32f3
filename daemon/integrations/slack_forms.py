"""The `/tier2` escalation form (a Slack modal), built from the policy so the choices a support
engineer sees at 2 a.m. are exactly the criteria the policy decides on."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import (
    CheckboxesElement,
    InputBlock,
    Option,
    PlainTextInputElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from daemon.integrations.base import EscalationFormSpec
from daemon.integrations.shorten import shorten
from daemon.sources.slack_ids import (
    CRITERIA,
    CUSTOMER,
    CUSTOMER_MAX_CHARS,
    DETAILS,
    DETAILS_MAX_CHARS,
    ESCALATE_CALLBACK,
    EVIDENCE_ACTION,
    EVIDENCE_MAX_CHARS,
    EVIDENCE_PREFIX,
    SEVERITY,
    TITLE,
    TITLE_MAX_CHARS,
)

EVIDENCE_FIELD_MAX_CHARS = 200
"""A block_id may be at most 255 characters (https://docs.slack.dev/reference/block-kit/blocks/input-block):
an evidence field named longer than this gets no input of its own."""


def escalation_modal(spec: EscalationFormSpec) -> View:
    blocks = [
        InputBlock(block_id=TITLE[0], label="What is wrong?",
                   element=PlainTextInputElement(
                       action_id=TITLE[1], initial_value=shorten(spec.title, TITLE_MAX_CHARS)
                       or None, max_length=TITLE_MAX_CHARS)),
        InputBlock(block_id=CUSTOMER[0], label="Customer",
                   element=PlainTextInputElement(action_id=CUSTOMER[1],
                                                max_length=CUSTOMER_MAX_CHARS)),
        InputBlock(block_id=SEVERITY[0], label="Severity",
                   element=StaticSelectElement(action_id=SEVERITY[1], options=[
                       Option(value=severity, text=severity) for severity in spec.severities])),
        InputBlock(block_id=CRITERIA[0], label="Emergency criteria that hold", optional=True,
                   element=CheckboxesElement(action_id=CRITERIA[1], options=[
                       Option(value=name, text=label) for name, label in spec.criteria])),
        InputBlock(block_id=DETAILS[0], label="Details for the Support Manager on Call",
                   optional=True, element=PlainTextInputElement(
                       action_id=DETAILS[1], multiline=True, max_length=DETAILS_MAX_CHARS)),
    ]
    # The evidence pack, one optional line each: the SMOC sees what is there and what is not.
    blocks += [
        InputBlock(block_id=EVIDENCE_PREFIX + name, label=shorten(label, 2000), optional=True,
                   element=PlainTextInputElement(action_id=EVIDENCE_ACTION,
                                                 max_length=EVIDENCE_MAX_CHARS))
        for name, label in spec.evidence if len(name) <= EVIDENCE_FIELD_MAX_CHARS]
    # The submission does not say where the command was used; the metadata carries it back
    # (https://docs.slack.dev/reference/views/modal-views: private_metadata, up to 3000 chars).
    metadata = json.dumps({"channel": spec.channel}) if spec.channel else None
    return View(type="modal", callback_id=ESCALATE_CALLBACK, title="Escalate to Tier 2",
                submit="Escalate", close="Cancel", blocks=blocks, private_metadata=metadata)

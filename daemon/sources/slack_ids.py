"""The ids and input caps of our own Slack surfaces: the approval buttons, the decline form,
the Escalation Engineers' offer buttons and the `/tier2` form.

They are the wire contract between what `integrations/slack*` renders and what
`sources/slack` reads back from a click or a submission, so they are written once, here, on the
inbound side (which may import nothing but the domain); the renderers import them.
"""

from __future__ import annotations

# The approval request (integrations/slack.py) and its decline form.
APPROVE_ACTION = "tier2gate_approve"
DECLINE_ACTION = "tier2gate_decline"
DECLINE_CALLBACK = "tier2gate_decline_reason"
REASON_BLOCK = "tier2gate_reason"
REASON_ACTION = "tier2gate_reason_input"
REASON_MAX_CHARS = 1000

# The Escalation Engineers' offer (integrations/slack_ee.py).
TAKE_ACTION = "tier2gate_ee_take"
RESOLVED_ACTION = "tier2gate_ee_resolved"
ENGINEERING_ACTION = "tier2gate_ee_engineering"

# The `/tier2` escalation form (integrations/slack_forms.py): (block id, action id) per input.
ESCALATE_CALLBACK = "tier2gate_escalate"
TITLE = ("tier2gate_title", "title")
CUSTOMER = ("tier2gate_customer", "customer")
SEVERITY = ("tier2gate_severity", "severity")
CRITERIA = ("tier2gate_criteria", "criteria")
DETAILS = ("tier2gate_details", "details")
TITLE_MAX_CHARS = 150
"""Our cap on the title input; the command's text prefills it, so it is shortened to fit (a
plain_text_input's max_length may be at most 3000:
https://docs.slack.dev/reference/block-kit/block-elements/plain-text-input-element).
The modal's own title, submit and close are ours and under Slack's 24 characters
(https://docs.slack.dev/reference/views/modal-views)."""
CUSTOMER_MAX_CHARS = 150
DETAILS_MAX_CHARS = 2000
EVIDENCE_PREFIX = "tier2gate_evidence:"  # + the field name the answer is stored under
EVIDENCE_ACTION = "evidence"
EVIDENCE_MAX_CHARS = 500
"""Our caps on the other inputs, as `max_length` in the modal; `sources.slack` refuses a
longer value in a submission, since a request that does not come from Slack's own form is not
bound by them."""


def slack_permalink(channel: str, ts: str) -> str:
    """Slack's archive link to message `ts` in `channel`; it redirects into the workspace for
    anyone signed in (the dashboard links EE offers with it too)."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"

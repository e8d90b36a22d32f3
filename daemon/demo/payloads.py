"""Vendor-shaped requests the demo sends: an incident.io incident, a Slack button press, the
decline form, a PagerDuty page event. Shapes follow the vendors' published examples."""

from __future__ import annotations

import json
from typing import Any

from daemon.sources.slack_ids import (
    APPROVE_ACTION,
    DECLINE_ACTION,
    DECLINE_CALLBACK,
    ENGINEERING_ACTION,
    REASON_ACTION,
    REASON_BLOCK,
    RESOLVED_ACTION,
    TAKE_ACTION,
)


def incident_io_event(*, incident_id: str, reference: str, name: str, severity: str,
                      customer: str, exhausted: bool, category: str, created_at: str,
                      updated_at: str) -> dict[str, Any]:
    def field(field_id: str, label: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"custom_field": {"id": field_id, "name": label, "field_type": "single_select",
                                 "description": "", "options": []}, "values": [value]}

    fields = [field("01CUST", "Customer", {"value_text": customer})]
    if exhausted:
        fields.append(field("01EXH", "Support exhausted knowledge", {"value_option": {
            "id": "01YES", "value": "Yes", "custom_field_id": "01EXH", "sort_key": 1}}))
    incident = {
        "id": incident_id, "reference": reference, "name": name, "mode": "standard",
        "visibility": "public",
        "severity": {"id": f"01SEV{severity}", "name": severity, "rank": 1},
        "incident_status": {"id": "01ST", "name": category.title(), "category": category},
        "custom_field_entries": fields, "creator": {"user": {"id": "01SE", "name": "Sam Support"}},
        "incident_role_assignments": [], "slack_team_id": "T0DEMO", "slack_channel_id": "C0INC",
        "permalink": f"https://app.incident.io/demo/incidents/{reference}",
        "created_at": created_at, "updated_at": updated_at,
    }
    event = ("public_incident.incident_created_v2" if category == "triage"
             else "public_incident.incident_status_updated_v2")
    if event.endswith("status_updated_v2"):
        status = incident["incident_status"]
        return {"event_type": event,
                event: {"incident": incident, "new_status": status, "previous_status": status}}
    return {"event_type": event, event: incident}


def button_press(escalation_id: str, user: str, decision: str, channel: str, ts: str,
                 action_ts: str) -> dict[str, Any]:
    action = APPROVE_ACTION if decision == "approve" else DECLINE_ACTION
    return {
        "type": "block_actions", "user": {"id": user, "username": user.lower(), "name": user},
        "api_app_id": "A0DEMO", "token": "unused", "trigger_id": f"trigger-{action_ts}",
        "team": {"id": "T0DEMO", "domain": "demo"},
        "container": {"type": "message", "message_ts": ts, "channel_id": channel,
                      "is_ephemeral": False},
        "channel": {"id": channel, "name": "tier2-approvals"},
        "actions": [{"action_id": action, "block_id": "actions", "value": escalation_id,
                     "type": "button", "action_ts": action_ts}],
    }


def ee_button_press(escalation_id: str, user: str, action: str, channel: str, ts: str,
                    action_ts: str) -> dict[str, Any]:
    """An Escalation Engineer's click on an offer: `action` is take, resolved or engineering."""
    press = button_press(escalation_id, user, "approve", channel, ts, action_ts)
    press["actions"][0]["action_id"] = {"take": TAKE_ACTION, "resolved": RESOLVED_ACTION,
                                        "engineering": ENGINEERING_ACTION}[action]
    return press


def decline_submission(escalation_id: str, user: str, channel: str, ts: str, reason: str
                       ) -> dict[str, Any]:
    return {
        "type": "view_submission", "user": {"id": user, "username": user.lower()},
        "api_app_id": "A0DEMO", "trigger_id": "trigger-form", "team": {"id": "T0DEMO"},
        "view": {"id": "V0DEMO", "callback_id": DECLINE_CALLBACK, "hash": "demo",
                 "private_metadata": json.dumps({"escalation_id": escalation_id,
                                                 "channel": channel, "ts": ts}),
                 "state": {"values": {REASON_BLOCK: {REASON_ACTION: {
                     "type": "plain_text_input", "value": reason}}}}},
    }


def pagerduty_event(event_type: str, *, event_id: str, incident_id: str, incident_key: str,
                    service_id: str, agent: str, occurred_at: str) -> dict[str, Any]:
    return {"event": {
        "id": event_id, "event_type": event_type, "resource_type": "incident",
        "occurred_at": occurred_at, "client": None,
        "agent": {"id": "PTIER2", "type": "user_reference", "summary": agent},
        "data": {"id": incident_id, "type": "incident", "number": 1, "title": "Tier 2 page",
                 "status": "acknowledged" if event_type.endswith("acknowledged") else "resolved",
                 "incident_key": incident_key, "urgency": "high",
                 "html_url": f"https://demo.pagerduty.com/incidents/{incident_id}",
                 "service": {"id": service_id, "type": "service_reference",
                             "summary": "Tier 2"}, "assignees": [], "priority": None,
                 "created_at": occurred_at}}}

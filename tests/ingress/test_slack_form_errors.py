"""A modal submission with a value the person must fix is answered the way Slack shows it in
the modal (HTTP 200, `response_action: errors` naming the input block), never with a 4xx that
Slack reports as a connection error; nothing is stored or decided for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.sources.slack_ids import (
    CRITERIA,
    CUSTOMER,
    DECLINE_ACTION,
    REASON_BLOCK,
    SEVERITY,
    TITLE,
)
from tests.world import BACKUP, button, decline_form, emergency, world


async def test_a_decline_reason_of_only_spaces_is_shown_in_the_modal(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        esc_id, ts = await emergency(w)
        await w.daemon.slack_interaction(button(esc_id, BACKUP, DECLINE_ACTION, ts, "3.001"))
        await w.daemon.settle()
        deliveries = await w.daemon.store.count_deliveries()

        # Seen: this was answered 400, which Slack shows as a connection error.
        response = await w.daemon.slack_interaction(decline_form(esc_id, BACKUP, ts, "   "))
        assert response.status == 200
        answer = await response.json()
        assert answer["response_action"] == "errors"
        assert list(answer["errors"]) == [REASON_BLOCK]
        assert answer["errors"][REASON_BLOCK]
        await w.daemon.settle()
        assert await w.daemon.store.count_deliveries() == deliveries  # nothing stored
        assert "declined" not in await w.daemon.events(esc_id)

        # The person corrects it in the same modal and submits again.
        response = await w.daemon.slack_interaction(
            decline_form(esc_id, BACKUP, ts, "Customer can wait for Monday"))
        assert (response.status, await response.read()) == (200, b"")
        await w.daemon.settle()
        assert "declined" in await w.daemon.events(esc_id)


def escalation_form(view: dict[str, Any], title: str, customer: str) -> dict[str, Any]:
    """The view_submission Slack sends when the support engineer presses Escalate."""
    return {
        "type": "view_submission", "user": {"id": "USUPPORT", "username": "usupport"},
        "api_app_id": "A1", "trigger_id": "trig-submit", "team": {"id": "T1"},
        "view": {**view, "id": "V0FORM42", "state": {"values": {
            TITLE[0]: {TITLE[1]: {"type": "plain_text_input", "value": title}},
            CUSTOMER[0]: {CUSTOMER[1]: {"type": "plain_text_input", "value": customer}},
            SEVERITY[0]: {SEVERITY[1]: {"type": "static_select",
                                        "selected_option": {"value": "S1"}}},
            CRITERIA[0]: {CRITERIA[1]: {"type": "checkboxes", "selected_options": []}},
        }}},
    }


async def test_an_escalation_form_without_a_title_is_shown_in_the_modal(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert (await w.daemon.slack_command("")).status == 200
        await w.daemon.settle()
        [view] = w.slack.views

        response = await w.daemon.slack_interaction(escalation_form(view, " ", "  "))
        assert response.status == 200
        answer = await response.json()
        assert answer["response_action"] == "errors"
        assert sorted(answer["errors"]) == sorted([TITLE[0], CUSTOMER[0]])
        await w.daemon.settle()
        assert await w.daemon.escalations() == []

        response = await w.daemon.slack_interaction(
            escalation_form(view, "Payments API returns 500s", "Initech"))
        assert (response.status, await response.read()) == (200, b"")
        await w.daemon.settle()
        [row] = await w.daemon.escalations()
        assert row.data["escalation"]["title"] == "Payments API returns 500s"

"""The approval request's Tier 2 load line: the figures in words, the policy's warnings, and a
PagerDuty name that is only ever text (whatever markup it carries)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from daemon.domain.policy import Fatigue
from daemon.integrations.base import ApprovalView, Tier2Load
from daemon.integrations.slack import approval_blocks, load_line
from tests.hostile import HOSTILE

VIEW = ApprovalView(escalation_id="esc-1", title="DB down", reference="INC-7", customer="Acme",
                    severity="S1", reason="why", criteria=(), age_minutes=5, weekend=True,
                    off_hours=True, approver_ids=("USMOC",), smoc_resolved=True)
ANN = Tier2Load(name="Ann", on_call=True, pages=5, weekend_pages=2, sleep_pages=1,
                weekends_in_a_row=2, window_days=7,
                warnings=Fatigue().warnings(sleep_pages=1, weekend_pages=2, weekends_in_a_row=2))


def test_the_load_in_words_with_the_policys_warnings() -> None:
    assert load_line(ANN) == (
        ":bar_chart: *Tier 2 on call:* Ann, paged twice this weekend, 1 sleep-hour page, 5 in "
        "all (last 7 days), 2 weekends in a row\n"
        ":warning: *Load above the policy's thresholds* (a warning, not a block): "
        "sleep-hour pages: 1 (the policy warns at 1); pages this weekend: 2 (the policy warns "
        "at 2); weekends paged in a row: 2 (the policy warns at 2)")
    quiet = replace(ANN, on_call=False, weekend_pages=0, sleep_pages=0, weekends_in_a_row=0,
                    pages=1, warnings=())
    assert load_line(quiet) == (":bar_chart: *Tier 2 paged last:* Ann, not paged this weekend, "
                                "0 sleep-hour pages, 1 in all (last 7 days)")


def test_asked_on_a_weekday_the_weekend_counted_is_called_the_last_one() -> None:
    tuesday = replace(ANN, weekend_now=False, warnings=Fatigue().warnings(
        sleep_pages=0, weekend_pages=2, weekends_in_a_row=1, weekend_now=False))
    assert load_line(tuesday) == (
        ":bar_chart: *Tier 2 on call:* Ann, paged twice last weekend, 1 sleep-hour page, 5 in "
        "all (last 7 days), 2 weekends in a row\n"
        ":warning: *Load above the policy's thresholds* (a warning, not a block): "
        "pages last weekend: 2 (the policy warns at 2)")


def test_the_buttons_stay_beside_a_warning() -> None:
    blocks = json.dumps([b.to_dict() for b in approval_blocks(replace(VIEW, tier2_load=ANN))])
    assert "Load above the policy" in blocks and "tier2gate_approve" in blocks


@pytest.mark.parametrize("name", HOSTILE)
def test_a_pagerduty_name_never_becomes_markup(name: str) -> None:
    blocks = json.dumps([b.to_dict() for b in approval_blocks(
        replace(VIEW, tier2_load=replace(ANN, name=name)))])
    for live in ("<!channel>", "<!here>", "<@U0ADMIN>", "<#C0GENERAL>", "<!subteam",
                 "<https://example.invalid|"):
        assert live not in blocks

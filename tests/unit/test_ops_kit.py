"""The operations kit in deploy/: Prometheus rules pass `promtool check rules` and their own
`promtool test rules`, and the rules and the Grafana dashboard only use metrics tier2gate
exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from daemon.metrics import Metrics
from tests.support import IN_CI

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "tier2gate-rules.yaml"
RULES_TEST = REPO / "deploy" / "prometheus" / "tier2gate-rules.test.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "tier2gate.json"
def exposed_names() -> set[str]:
    """Every sample name Metrics can expose (`_total`, `_bucket`, … included)."""
    names: set[str] = set()
    for family in Metrics().registry.collect():  # a family even before its first sample
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\btier2gate_[a-z0-9_]+", text))


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian package `prometheus`)"
        if IN_CI:
            pytest.fail(message + "; .ci/run installs it")
        pytest.skip(message)
    return found


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_the_rules_fire_on_what_tier2gate_exposes() -> None:
    done = subprocess.run([promtool(), "test", "rules", RULES_TEST.name], cwd=RULES.parent,
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_cover_what_an_operator_must_hear_about() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"]: rule["expr"] for group in rules["groups"]
              for rule in group["rules"]}
    assert "tier2gate_dead_letters_total" in alerts["Tier2gateDeadLetters"]
    assert "tier2gate_escalations_needing_attention" in alerts[
        "Tier2gateEscalationNeedsAttention"]
    assert "tier2gate_preflight_ok" in alerts["Tier2gatePreflightFailing"]
    assert "tier2gate_webhook_rejections_total" in alerts["Tier2gateWebhookRejectionBurst"]
    for source in ("incident-io", "pagerduty"):
        [silent] = [expr for expr in alerts.values() if f'route="/webhooks/{source}"' in expr]
        assert "tier2gate_http_requests_total" in silent


@pytest.mark.parametrize("path", [RULES, RULES_TEST, DASHBOARD], ids=lambda p: p.name)
def test_only_metrics_tier2gate_exposes_are_used(path: Path) -> None:
    unknown = referenced(path.read_text()) - exposed_names()
    assert not unknown, f"{path.name} uses metrics daemon/metrics.py does not define"


def test_the_dashboard_is_grafana_json_with_a_panel_per_main_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "tier2gate"
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    exprs = " ".join(target["expr"] for panel in panels for target in panel["targets"])
    main = {"tier2gate_escalations_needing_attention", "tier2gate_dead_letters_total",
            "tier2gate_http_requests_total", "tier2gate_webhook_rejections_total",
            "tier2gate_escalations_total", "tier2gate_jobs", "tier2gate_job_runs_total",
            "tier2gate_approval_latency_seconds_bucket", "tier2gate_page_latency_seconds_bucket",
            "tier2gate_preflight_ok"}
    assert main <= referenced(exprs)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]

"""Settings: YAML + environment precedence, secrets masked, readable errors for bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.settings import ConfigError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "tier2gate.yaml"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No TIER2GATE_* from the developer's shell, and a working dir without config/."""
    import os

    for name in list(os.environ):
        if name.startswith("TIER2GATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t2g.yaml"
    path.write_text(text)
    return path


def test_no_file_and_no_environment_gives_the_contract_defaults() -> None:
    settings = load_settings()
    assert settings.mode == "live"
    assert settings.database_url == "sqlite:///./var/tier2gate.db"
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 8080)
    assert settings.policy_file == Path("config/policy.yaml")
    assert settings.slack.api_url == "https://slack.com/api/"
    assert settings.pagerduty.api_url == "https://api.pagerduty.com"
    assert settings.pagerduty.events_url == "https://events.pagerduty.com"
    assert settings.incident_io.api_url == "https://api.incident.io"
    assert (settings.tracker.kind, settings.tracker.url) == ("gitlab", "https://gitlab.com")


def test_the_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    path = write(tmp_path, "mode: shadow\nhttp:\n  port: 9000\n  host: 127.0.0.1\n")
    monkeypatch.setenv("TIER2GATE_CONFIG", str(path))
    monkeypatch.setenv("TIER2GATE_HTTP__PORT", "9100")
    monkeypatch.setenv("TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS", "old-secret, new-secret")
    settings = load_settings()
    assert settings.mode == "shadow"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 9100)
    assert [s.get_secret_value() for s in settings.pagerduty.webhook_secrets] == [
        "old-secret", "new-secret"]


def test_the_default_file_is_read_from_config_when_present(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "tier2gate.yaml").write_text("database_url: sqlite:///x.db\n")
    assert load_settings().database_url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http:\n  host: 0.0.0.0\n  prot: 8080\n", "line 3: http.prot: unknown setting"),
        ("mode: live\ndatabse_url: sqlite:///x\n", "line 2: databse_url: unknown setting"),
        ("http:\n  port: eighty\n", "line 2: http.port: Input should be a valid integer"),
        ("mode: dry-run\n", "line 1: mode: Input should be 'live' or 'shadow'"),
        ("slack:\n  bot_token: [1, 2]\n", "line 2: slack.bot_token"),
        ("http:\n  port: 80\n   host: x\n", "line 3: mapping values are not allowed here"),
        ("- a list\n", "the top level must be a mapping"),
    ],
)
def test_a_bad_file_names_the_key_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           text: str, expected: str) -> None:
    monkeypatch.setenv("TIER2GATE_CONFIG", str(write(tmp_path, text)))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value)


def test_a_typo_in_an_environment_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.setenv("TIER2GATE_SLACK__SIGNING_SECERT", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "environment variable TIER2GATE_SLACK__SIGNING_SECERT: unknown setting" in str(
        caught.value)


def test_a_named_file_that_is_missing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIER2GATE_CONFIG", "/nonexistent/t2g.yaml")
    with pytest.raises(ConfigError, match=re.escape("/nonexistent/t2g.yaml: cannot read")):
        load_settings()


def test_check_config_exits_1_and_names_the_typo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TIER2GATE_CONFIG", str(write(tmp_path, "jobs:\n  max_atempts: 3\n")))
    assert main(["check-config"]) == 1
    err = capsys.readouterr().err
    assert "line 2: jobs.max_atempts: unknown setting" in err


def test_check_config_masks_every_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    secrets = {
        "TIER2GATE_SLACK__BOT_TOKEN": "xoxb-111-SECRET-bot",
        "TIER2GATE_SLACK__SIGNING_SECRET": "SECRET-signing",
        "TIER2GATE_PAGERDUTY__API_TOKEN": "SECRET-pd-token",
        "TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS": "SECRET-wh-1,SECRET-wh-2",
        "TIER2GATE_PAGERDUTY__TIER2_ROUTING_KEY": "SECRET-routing",
        "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET": "whsec_SECRETSECRET",
        "TIER2GATE_INCIDENT_IO__API_TOKEN": "SECRET-inc",
        "TIER2GATE_TRACKER__TOKEN": "glpat-SECRET",
    }
    # The rest of a complete live setup, so check-config finds nothing to refuse.
    complete = {"TIER2GATE_SLACK__APPROVAL_CHANNEL": "C0APPROVALS",
                "TIER2GATE_TRACKER__PROJECT": "ops/retros",
                "TIER2GATE_PAGERDUTY__SMOC_SCHEDULE_ID": "PSMOC1"}
    for name, value in {**secrets, **complete}.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "SECRET" not in out
    assert out.count("**********") == len(secrets) + 1  # two webhook secrets


def test_the_shipped_example_is_valid_and_names_every_setting(monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    import yaml

    monkeypatch.setenv("TIER2GATE_CONFIG", str(EXAMPLE))
    settings = load_settings()
    example = yaml.safe_load(EXAMPLE.read_text())

    def keys(data: dict[str, object], prefix: str = "") -> set[str]:
        found = set()
        for key, value in data.items():
            found.add(prefix + key)
            if isinstance(value, dict):
                found |= keys(value, prefix + key + ".")
        return found

    assert keys(example) == keys(settings.masked())


def test_the_built_in_policy_is_the_shipped_example() -> None:
    from daemon.settings import BUILTIN_POLICY_FILE

    assert BUILTIN_POLICY_FILE.read_text() == (EXAMPLE.parent / "policy.yaml").read_text()


def test_without_config_dir_the_built_in_policy_is_in_force() -> None:
    from daemon.settings import BUILTIN_POLICY_FILE

    assert load_settings().resolved_policy_file() == BUILTIN_POLICY_FILE

"""The pure rules of follow-through: which retro sections are filled, which evidence is
handed over, and the policy's cadence and evidence settings explained by line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from daemon.domain.policy_file import PolicyError, parse_policy
from daemon.domain.retro_sections import PLACEHOLDER, filled_sections, missing_sections
from daemon.policy_source import load_policy
from daemon.settings import ConfigError, FollowthroughSettings, KpiSettings, load_settings

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = (REPO / "daemon" / "templates" / "retro.md.j2").read_text(encoding="utf-8")
ALL = ("Root cause", "Corrective actions", "Documentation or error message to improve")


def body(**sections: str) -> str:
    parts = ["## Summary\n\nSomething broke.\n"]
    for name in ALL:
        text = sections.get(name.split()[0].lower(), PLACEHOLDER)
        parts.append(f"## {name}\n\n{text}\n")
    parts.append("## Retro checklist\n\n- [ ] What did the customer experience?\n")
    return "\n".join(parts)


@pytest.mark.parametrize(("text", "missing"), [
    (body(), ALL),
    (body(root="A bad deploy."), ALL[1:]),
    (body(root="x", corrective="y", documentation="z"), ()),
    (body(root="<!-- fill me -->"), ALL),  # a comment is no content
    (body(root="  \n\n  "), ALL),
    ("no headings at all", ALL),
    # Edited in the tracker: another heading level, trailing #s, different case.
    ("### ROOT CAUSE ###\nIt was DNS.\n# corrective actions\nRoll back faster.\n"
     "## Documentation or error message to improve\nThe 502 page.", ()),
])
def test_sections_are_filled_by_anything_but_their_placeholder(text: str,
                                                               missing: tuple[str, ...]) -> None:
    assert missing_sections(text) == missing
    assert filled_sections(text) == {name: name not in missing for name in ALL}


def test_the_shipped_retro_template_has_every_section_empty() -> None:
    for name in ALL:
        assert f"## {name}\n\n{PLACEHOLDER}" in TEMPLATE
    assert missing_sections(TEMPLATE) == ALL


def test_the_evidence_pack_is_what_the_fields_hand_over() -> None:
    policy = load_policy(REPO / "config" / "policy.yaml")
    present, missing = policy.evidence_pack({
        "customer IMPACT": "All EU checkouts fail", "Logs": "N/A", "Deadline": " ",
        "Rollback status": "rolled back at 02:10", "unrelated": "yes"})
    assert present == ("customer impact", "rollback status")
    assert missing == ("what was tried", "logs or request ids", "deadline")
    assert policy.cadence_minutes("S1") == 30 and policy.cadence_minutes("S3") is None
    assert policy.cadence_minutes(None) is None


BASE = (REPO / "config" / "policy.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(("old", "new", "fragment"), [
    ("  S2: 60\n", "  S9: 60\n", "update_cadence_minutes.S9: unknown severity 'S9'"),
    ("  S1: 30\n", "  S1: -5\n", "update_cadence_minutes.S1"),
    ("  - name: deadline\n", "  - name: logs\n", "evidence.3.name: evidence name 'logs' is taken"),
    ('    fields: ["Deadline", "Recovery deadline at"]\n', "    fields: []\n",
     "evidence.3.fields"),
])
def test_policy_mistakes_in_cadence_and_evidence_name_key_and_line(old: str, new: str,
                                                                   fragment: str) -> None:
    assert old in BASE
    broken = BASE.replace(old, new, 1)
    line = BASE[:BASE.index(old)].count("\n") + 1
    with pytest.raises(PolicyError) as raised:
        parse_policy(broken, "policy.yaml")
    message = str(raised.value)
    assert fragment in message, message
    assert raised.value.problems[0].line in (line, line - 1), message


def test_a_policy_without_follow_through_keeps_its_fingerprint() -> None:
    """Installations whose policy predates cadence and evidence keep the policy in force:
    no `policy_changed` for every open escalation just because the fields exist."""
    bare = parse_policy(BASE.split("# Update cadence:")[0] + "rules:\n  - name: all\n"
                        "    outcome: rfh\n", "policy.yaml")
    dumped = bare.model_dump_json(exclude_none=True,
                                  exclude={"update_cadence_minutes", "evidence"})
    assert bare.fingerprint == hashlib.sha256(dumped.encode()).hexdigest()[:12]


def test_follow_through_and_kpi_settings_are_checked_by_key_and_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t2g.yaml"
    path.write_text("mode: shadow\nfollowthrough:\n  retro_poll_batch: 0\n"
                    "kpi:\n  reopen_rate_max: 2\n  ack_minuts: {S1: 15}\n", encoding="utf-8")
    monkeypatch.setenv("TIER2GATE_CONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    for words in ("line 3: followthrough.retro_poll_batch: Input should be greater than or "
                  "equal to 1", "line 5: kpi.reopen_rate_max: Input should be less than or "
                  "equal to 1", "line 6: kpi.ack_minuts: unknown setting"):
        assert words in message, message


def test_the_shipped_config_file_names_every_follow_through_and_kpi_setting() -> None:
    text = (REPO / "config" / "tier2gate.yaml").read_text(encoding="utf-8")
    for section, model in (("followthrough", FollowthroughSettings), ("kpi", KpiSettings)):
        block = text.split(f"\n{section}:", 1)[1].split("\n\n", 1)[0]
        for name in model.model_fields:
            assert f"\n  {name}:" in block, (section, name)

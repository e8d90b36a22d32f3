"""Jira: links with parentheses, query strings and fragments survive the Markdown -> ADF
conversion whole (issue 13: `https://example.com/a_(b)?x=1&y=2` was cut at the `(`)."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.integrations.base import IssueDraft
from daemon.integrations.tracker import jira
from daemon.standins.trackers import FakeJira

TOKEN = "ATATT3xSECRETjr77b1"
EMAIL = "bot@acme.example"
PARENS = "https://example.com/a_(b)?x=1&y=2"


def links(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(text, href) of every link mark in the doc, in order."""
    return [(node["text"], mark["attrs"]["href"])
            for block in doc["content"] for node in block.get("content", [])
            for mark in node.get("marks", []) if mark["type"] == "link"]


def text(doc: dict[str, Any]) -> str:
    return "".join(node.get("text", "") for block in doc["content"]
                   for node in block.get("content", []))


@pytest.mark.parametrize(("markdown", "expected", "readable"), [
    (PARENS, [(PARENS, PARENS)], PARENS),
    (f"[dashboard]({PARENS})", [("dashboard", PARENS)], "dashboard"),
    (f"[dashboard]({PARENS}#panel-2)", [("dashboard", PARENS + "#panel-2")], "dashboard"),
    (f"(see {PARENS}).", [(PARENS, PARENS)], f"(see {PARENS})."),
    (f"[runbook]({PARENS} \"Runbook\")", [("runbook", PARENS)], "runbook"),
    ("[spaced](<https://x.example/a b?q=1>)", [("spaced", "https://x.example/a%20b?q=1")],
     "spaced"),
    ("https://en.wikipedia.org/wiki/Tier_(disambiguation)?oldid=1&action=view, ok",
     [("https://en.wikipedia.org/wiki/Tier_(disambiguation)?oldid=1&action=view",
       "https://en.wikipedia.org/wiki/Tier_(disambiguation)?oldid=1&action=view")],
     "https://en.wikipedia.org/wiki/Tier_(disambiguation)?oldid=1&action=view, ok"),
    ("https://pd.example/incidents/Q1?tab=timeline&from=2026-11-18T08:26:40Z.",
     [("https://pd.example/incidents/Q1?tab=timeline&from=2026-11-18T08:26:40Z",
       "https://pd.example/incidents/Q1?tab=timeline&from=2026-11-18T08:26:40Z")],
     "https://pd.example/incidents/Q1?tab=timeline&from=2026-11-18T08:26:40Z."),
    ("[not http](ftp://x.example/(a)) and https:// alone", [],
     "[not http](ftp://x.example/(a)) and https:// alone"),
])
def test_links_keep_parentheses_and_query_strings(
        markdown: str, expected: list[tuple[str, str]], readable: str) -> None:
    doc = jira.adf(markdown)
    assert links(doc) == expected
    assert text(doc) == readable  # nothing lost around the link either


async def test_a_retro_link_with_parentheses_reaches_jira_intact() -> None:
    fake = FakeJira(TOKEN, email=EMAIL)
    await fake.start()
    client = jira.Client(fake.url, f"{EMAIL}:{TOKEN}", "OPS", timeout_s=5)
    body = (f"## Links\nDashboard: [latency]({PARENS})\nRaw: {PARENS}\n\n"
            "Runbook (https://rb.example/db?section=failover&v=2).\n")
    try:
        await client.create(IssueDraft(title="Retro: checkout 500s", body=body,
                                       marker="tier2gate-retro-esc-links", labels=("retro",)))
        [issue] = fake.issues
        description = issue.payload["fields"]["description"]
        assert links(description) == [
            ("latency", PARENS), (PARENS, PARENS),
            ("https://rb.example/db?section=failover&v=2",
             "https://rb.example/db?section=failover&v=2")]
        assert f"Raw: {PARENS}" in issue.body
        assert "Runbook (https://rb.example/db?section=failover&v=2)." in issue.body
    finally:
        client.close()
        await fake.close()

"""The escaping function of each sink, on the hostile table of the end-to-end test."""

from __future__ import annotations

import re

import pytest

from daemon.integrations.tracker.jira import adf
from daemon.markup import (
    WORD_JOINER,
    markdown_literal,
    markdown_url,
    one_line,
    safe_url,
    slack_link,
    slack_literal,
    slack_mention,
    tracker_title,
)
from daemon.standins.trackers import adf_text
from tests.hostile import HOSTILE


@pytest.mark.parametrize("text", HOSTILE)
def test_slack_literal_leaves_no_markup(text: str) -> None:
    escaped = slack_literal(text)
    assert not re.search(r"[<>]", escaped)
    assert re.sub(r"&(amp|lt|gt);", "", escaped).count("&") == 0


def test_slack_literal_keeps_what_slack_shows() -> None:
    assert slack_literal("a & b <!here>") == "a &amp; b &lt;!here&gt;"


@pytest.mark.parametrize(("user_id", "mention"), [
    ("USMOC", "<@USMOC>"), ("W0ENTERPRISE", "<@W0ENTERPRISE>"),
    ("!channel", "!channel"), ("U1>|<!here", "U1&gt;|&lt;!here"), ("", "")])
def test_only_a_user_id_becomes_a_mention(user_id: str, mention: str) -> None:
    assert slack_mention(user_id) == mention


@pytest.mark.parametrize(("url", "link"), [
    ("https://app.incident.io/x", "<https://app.incident.io/x|incident>"),
    ("https://x.example/a|open runbook", "<https://x.example/a%7Copen%20runbook|incident>"),
    ("https://x.example/?a=1&b=<2>", "<https://x.example/?a=1&amp;b=%3C2%3E|incident>"),
    ("javascript:alert(1)", "incident: javascript:alert(1)"),
    ("<!channel>", "incident: &lt;!channel&gt;"),
])
def test_a_vendor_url_never_chooses_its_slack_label(url: str, link: str) -> None:
    assert slack_link(url, "incident") == link


def test_safe_url_keeps_percent_escapes_and_refuses_other_schemes() -> None:
    assert safe_url(" https://x.example/a%20b?q=[1] ") == "https://x.example/a%20b?q=%5B1%5D"
    assert safe_url("ftp://x.example/") is None
    assert safe_url("https:///nohost") is None
    assert safe_url("http://[::1") is None


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_literal_is_one_line_with_no_markup(text: str) -> None:
    escaped = markdown_literal(text)
    assert escaped == one_line(escaped) and "\n" not in escaped
    assert not re.search(r"^\s*[/#>\-+=]", escaped)
    assert not re.search(r"@\w", escaped)
    unescaped = re.sub(r"\\.", "", escaped)
    assert not re.search(r"[<>\[\]`*|~${}&\\]", unescaped), escaped


@pytest.mark.parametrize(("text", "escaped"), [
    ("Acme\n/assign @someone\n/close", f"Acme /assign @{WORD_JOINER}someone /close"),
    ("/close", "\\/close"),
    ("  # big", "  \\# big"),
    ("12. item", "12\\. item"),
    ("incident_io _em_ a*b*", "incident_io \\_em\\_ a\\*b\\*"),
    ("<b>&amp;</b>", "\\<b\\>\\&amp;\\</b\\>"),
    ("[x](https://e.example)", "\\[x\\](https://e.example)"),
])
def test_markdown_literal_examples(text: str, escaped: str) -> None:
    assert markdown_literal(text) == escaped


def test_tracker_titles_are_one_line_and_mention_nobody() -> None:
    assert tracker_title("Down\r\n/close @all") == f"Down /close @{WORD_JOINER}all"


def test_markdown_url_is_bare_or_literal() -> None:
    assert markdown_url("https://x.example/a b)") == "https://x.example/a%20b%29"
    assert markdown_url("javascript:alert(1)//\n/close") == "javascript:alert(1)// /close"


@pytest.mark.parametrize("text", HOSTILE)
def test_jira_shows_escaped_markdown_as_the_text_itself(text: str) -> None:
    """Jira's Markdown -> ADF conversion honours the escapes: the reader sees the text (on one
    line, mentions with their joiner), never a heading, code block or link of its making."""
    doc = adf(f"## Summary\n\n{markdown_literal(text)}")
    [heading, paragraph] = doc["content"]
    assert heading["type"] == "heading"
    assert paragraph["type"] == "paragraph"
    for node in paragraph["content"]:
        for mark in node.get("marks", []):
            assert node["text"] == mark["attrs"]["href"]  # a bare URL, labelled by itself
    shown = adf_text({"content": [paragraph]})
    assert shown == one_line(text).replace("@", "@" + WORD_JOINER)

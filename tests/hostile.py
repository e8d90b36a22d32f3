"""The table of hostile strings: text anyone can put into an incident, a PagerDuty user's name
or a decline reason, aimed at every kind of markup tier2gate writes (Slack mrkdwn, GitLab and
GitHub Markdown and quick actions, Jira's document format, HTML)."""

from __future__ import annotations

HOSTILE = [
    "Checkout down <!channel> <https://example.invalid|open runbook>",
    "Acme\n/assign @someone\n/close",
    "<!here> <@U0ADMIN> <#C0GENERAL> <!subteam^S0TEAM> please look",
    "[open runbook](https://example.invalid) ![pixel](https://example.invalid/p.png)",
    "<img src=x onerror=alert(1)> <script>alert(1)</script> &lt;b&gt; <!-- hidden -->",
    "@all @acme/oncall\n# Heading\n## Also\n- item\n> quote\n1. first",
    "| cell | break |\n```\ncode\n```\n{+ added +} $math$ ~urgent ~~gone~~ *bold* `code`",
    "Initech\r\n/label ~urgent\u2028/close\u2029/assign @me\x85/reopen",
]
"""Each is used at once as an incident's name, its customer field, part of its incident.io
URL, the name of the PagerDuty user who acknowledges the page and a decline reason."""

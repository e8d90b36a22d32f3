"""Untrusted text made literal for each place tier2gate writes it: one function per sink.

Incident names, custom fields, decline reasons, people's names and vendor error texts come from
outside. Written as they are, they would be markup: `<!channel>` pings a whole Slack channel,
`<https://x|open runbook>` disguises a link, a line `/close` is a GitLab quick action, `@all`
notifies a whole project. Each sink has one function that makes a value literal, and the code
that writes a sink (the Slack adapter, the tracker templates and adapters) applies it to every
value it did not write itself; markup tier2gate means (a mention of an approver it chose, a link
it built) comes only from `slack_mention` and the link functions here.

Pure functions, no I/O. The domain words its chat texts as `Message`s (facts: literal text and
mentions), which `slack_mrkdwn` renders.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from daemon.domain.messages import Link, Mention, Message, Part, Strong, Text, message

_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{1,40}")
_URL_SAFE = "-._~:/?#=&%+,;!$*'"
"""Kept as they are in a URL we link to; anything else (`|`, `<`, `>`, spaces, brackets,
parentheses, `@`, quotes, backticks) is percent-encoded, so it cannot end a Slack link or
choose its label, nor end a Markdown autolink."""
_MD_INLINE = re.compile(r"[\\`*\[\]<>&|~${}]|(?<![^\W_])_|_(?![^\W_])")
"""Markdown punctuation that is markup anywhere in a line: escapes, code, emphasis, links and
images (`![`), raw HTML and autolinks, entities, table cells, strikethrough and GitLab label
references, GitLab math and inline diffs. A `_` between two letters or digits can neither open
nor close emphasis (CommonMark's flanking rules), so `incident_io` stays as it is."""
_MD_LINE_START = re.compile(r"^(\s*)(?:([#/\-+=>!:.])|(\d+)([.)]))")
"""What is markup only at the start of a line: headings, GitLab quick actions (`/close`),
list items, setext underlines, block quotes, ordered lists."""
_MENTION = re.compile(r"@(?=[\w])")
WORD_JOINER = "\u2060"
"""Invisible and zero-width: `@\u2060all` reads as `@all` but is no mention in GitLab, GitHub
(a mention is `@` directly followed by a name) or anywhere else."""


def slack_literal(text: str) -> str:
    """Untrusted text in Slack mrkdwn (message `text`, section and context blocks): `&`, `<`
    and `>` are the only characters Slack reads as markup for mentions (`<@U…>`, `<!here>`),
    channel links and links (https://docs.slack.dev/messaging/formatting-message-text#escaping).
    Emphasis (`*bold*`) stays possible, as in anything a person types into Slack."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_mention(user_id: str) -> str:
    """A mention of a Slack user tier2gate chose (an approver, the person who decided). Only a
    user id can become one; anything else is shown as text."""
    if _SLACK_USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return slack_literal(user_id)


def slack_mrkdwn(text: Message) -> str:
    """A message in Slack mrkdwn: every `Text` literal (`slack_literal`), every `Strong` literal
    and bold, every `Mention` a mention (`slack_mention`), every `Link` a link (`slack_link`)."""
    return "".join(_slack_part(p) for p in text.parts)


def _slack_part(part: Part) -> str:
    if isinstance(part, Text):
        return slack_literal(part.text)
    if isinstance(part, Strong):
        return f"*{slack_literal(part.strong)}*"
    if isinstance(part, Mention):
        return slack_mention(part.mention)
    return slack_link(part.url, part.label)


_STORED_MARKUP = re.compile(r"<@([UW][A-Z0-9]{1,40})>|<(https?://[^<>|\s]+)\|([^<>]*)>")
"""What the previous version wrote as markup: a mention `<@U…>` (`slack_mention`) or a link
`<url|label>` (`slack_link`: the URL made safe, both parts escaped)."""
_STORED_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}
_STORED_ENTITY = re.compile("|".join(_STORED_ENTITIES))


def _stored_literal(text: str) -> str:
    return _STORED_ENTITY.sub(lambda m: _STORED_ENTITIES[m[0]], text)


def message_from_mrkdwn(stored: str) -> Message:
    """The `Message` of a chat text that the previous version stored in a job as Slack mrkdwn
    (a note or reply still pending across the upgrade): `slack_mrkdwn` of the result is
    `stored` again. That version wrote mentions only as `<@U…>`, links only as `<url|label>`
    (the retro reminder's) and every other text through `slack_literal`, so those are the only
    markup to read back."""
    pieces: list[Message | Mention | Link | str] = []
    at = 0
    for found in _STORED_MARKUP.finditer(stored):
        pieces.append(_stored_literal(stored[at:found.start()]))
        if found[1] is not None:
            pieces.append(Mention(mention=found[1]))
        else:
            pieces.append(Link(url=_stored_literal(found[2]), label=_stored_literal(found[3])))
        at = found.end()
    pieces.append(_stored_literal(stored[at:]))
    return message(*pieces)


def safe_url(url: str) -> str | None:
    """`url` ready to be linked, or None when it is not an http(s) URL with a host.

    Characters that would end a link or choose its label in Slack or Markdown are
    percent-encoded; percent-encoded characters are left as they are."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced `[` in the host
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe=_URL_SAFE)


def slack_link(url: str, label: str) -> str:
    """A Slack link to a URL from a vendor, labelled by tier2gate (`label` is escaped too). A
    value that is no http(s) URL is shown as text after the label."""
    safe = safe_url(url)
    if safe is None:
        return f"{slack_literal(label)}: {slack_literal(url)}"
    return f"<{slack_literal(safe)}|{slack_literal(label)}>"


def one_line(text: str) -> str:
    """Every kind of line break (`\\n`, `\\r`, U+2028, …) as one space: a title, a table cell
    or a value in the middle of a sentence stays on its line."""
    return " ".join(text.splitlines())


def terminal_line(text: str, limit: int | None = None) -> str:
    """Text for a plain-text report on a terminal: one printable ASCII line (anything else is
    `?`), so no name or reason can add a line or move the terminal's cursor; at most `limit`
    characters when given."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:limit]


def plain_literal(text: str) -> str:
    """Untrusted text on a plain-text chat, where `@name` is a mention: `@` before a name gets
    an invisible word joiner, so the text notifies nobody (the chat's own mentions are written
    by its adapter)."""
    return _MENTION.sub("@" + WORD_JOINER, text)


def tracker_title(text: str) -> str:
    """An issue title from untrusted text: one line, and no `@name` that notifies (GitLab
    reads mentions in titles too). Titles are plain text otherwise."""
    return _MENTION.sub("@" + WORD_JOINER, one_line(text))


def markdown_literal(text: str) -> str:
    """Untrusted text in the Markdown of a tracker issue or note (GitLab, GitHub, and Jira,
    whose adapter converts the same Markdown to its document format and honours its escapes).

    The value is put on one line, so no line of it can be a quick action, heading or list item
    of its own; its markup characters are backslash-escaped (CommonMark: any ASCII punctuation
    may be), including those that are markup only at the start of a line, where a template may
    place the value; `@` before a name gets an invisible word joiner, so neither `@all` nor
    `@group/team` notifies anybody.
    """
    text = _MD_INLINE.sub(lambda m: "\\" + m[0], one_line(text))
    text = _MD_LINE_START.sub(_escape_line_start, text, count=1)
    return _MENTION.sub("@" + WORD_JOINER, text)


def markdown_url(url: str) -> str:
    """A vendor URL written bare in tracker Markdown, where it becomes a link labelled with
    itself; a value that is no http(s) URL is written as literal text."""
    safe = safe_url(url)
    return safe if safe is not None else markdown_literal(url)


_PLACEHOLDER = re.compile(r"\{(?=[{%])")
_WIKI = re.compile(r"[\\\[\]{}*_+^~?|!#\-]")
"""Jira wiki markup characters: links and mentions (`[~accountid:…]`), macros (`{code}`,
`{color}`), emphasis (`*`, `_`, `+`, `^`, `~`, `-`, `??`), tables (`|`), images (`!x!`),
numbered lists (`#`), monospace (`{{…}}`) and the escape itself
(https://jira.atlassian.com/secure/WikiRendererHelpAction.jspa?section=all)."""


def zendesk_literal(text: str) -> str:
    """Untrusted text in a Zendesk ticket comment's plain-text `body` (Zendesk escapes it as
    HTML itself; only `html_body` is markup). One line, so it cannot pose as a line of the
    note; `@name` gets a word joiner and `{{`/`{%` is broken up, so no mention is made and no
    Liquid placeholder expands should the text ever pass through a trigger or macro."""
    text = _PLACEHOLDER.sub("{" + WORD_JOINER, one_line(text))
    return _MENTION.sub("@" + WORD_JOINER, text)


def jira_wiki_literal(text: str) -> str:
    """Untrusted text in Jira wiki markup (Jira Service Management request comments): one line,
    every markup character backslash-escaped, `@` before a name made inert."""
    return _MENTION.sub("@" + WORD_JOINER, _WIKI.sub(lambda m: "\\" + m[0], one_line(text)))


def _escape_line_start(match: re.Match[str]) -> str:
    if match[2] is not None:
        return f"{match[1]}\\{match[2]}"
    return f"{match[1]}{match[3]}\\{match[4]}"

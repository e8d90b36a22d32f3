"""Jira Cloud issues through the `jira` library (REST v3: `POST /rest/api/3/issue`).

Configuration, since `TrackerSettings` has only url/token/project:
- `tracker.url`: the site, e.g. `https://acme.atlassian.net`.
- `tracker.token`: `email:api_token` for an Atlassian API token (HTTP Basic, the usual case);
  a token without a colon is sent as a Bearer token (an OAuth 2.0 access token, with
  `tracker.url` = `https://api.atlassian.com/ex/jira/<cloudId>`).
- `tracker.project`: the project key (`OPS`) or numeric id. Issues are of type "Task".
- an assignee is an Atlassian accountId.

Only Jira Cloud is supported: v3 descriptions are ADF (the Markdown body is converted to
paragraphs, headings and code blocks, with links kept whole: CommonMark destinations
with balanced parentheses, GFM's trimming of bare URLs) and the marker is a label only, found
with JQL on `/rest/api/3/search/jql` (the old `/search` is gone). That search is eventually
consistent, so a just-created issue may be missed: the caller's write-ahead record stays the
primary guard, as in the exactly-once pattern.

The library asks `/rest/api/3/serverInfo` on construction (it decides Cloud vs Data Center from
it), so the JIRA object is built lazily inside the first call's worker thread, never on the event
loop. Retries are the job runner's: `max_retries=0` stops its ResilientSession from retrying
429/503 and connection errors, which it does with sleeps of up to a minute.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import requests
from jira import JIRA, JIRAError

from daemon.clock import Clock, SystemClock
from daemon.integrations.base import IssueDraft, IssueRef, IssueState, TrackerAccess
from daemon.integrations.failures import Permanent, http_failure
from daemon.integrations.tracker import Limits, labels_with_marker, title_and_body, unanswered

T = TypeVar("T")
ISSUE_TYPE = "Task"
LIMITS = Limits(title=255, body=32_767, label=255)
"""Jira Cloud refuses a `summary` over 255 characters ("Summary can't exceed 255 characters",
https://github.com/prometheus-community/jiralert/issues/123), a description over
32,767 ("It exceeds the allowed limit of 32,767 characters", fixed in Cloud:
https://jira.atlassian.com/browse/JRACLOUD-68949) and a label over 255 ("exceeds the maximum
length for a single label of 255 characters",
https://github.com/prometheus-community/jiralert/issues/146). The body limit is applied to the
Markdown before it becomes ADF, whose text is no longer than it."""
REST_API_VERSION = "3"
FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*\S)\s*$")
# Where a link may begin (a Markdown `[label](...)` or a bare http(s) URL), or a backslash
# escape (CommonMark: any ASCII punctuation), which is literal text and never starts a link.
LINK_START = re.compile(r"\\[!-/:-@\[-`{-~]|\[|https?://", re.IGNORECASE)
ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
URL_SCHEME = re.compile(r"https?://", re.IGNORECASE)
# GFM's extended autolinks end before trailing punctuation, an unbalanced `)` and an entity-like
# `&name;` (github.github.com/gfm/#extended-autolink-path-validation).
TRAILING_PUNCTUATION = "?!.,:*_~'\""
TRAILING_ENTITY = re.compile(r"&[A-Za-z0-9]+;$")


@dataclass(frozen=True)
class _Link:
    start: int
    end: int
    label: str
    href: str


def _destination(text: str, at: int) -> tuple[str, int] | None:
    """A CommonMark link destination starting at `at`: `<...>`, or a run without spaces whose
    parentheses balance (`a_(b)` is one URL). Returns it (backslash escapes removed) and where
    it ends, or None when it is not one."""
    if text.startswith("<", at):
        close = text.find(">", at + 1)
        if close < 0 or "<" in text[at + 1:close]:
            return None
        return text[at + 1:close].replace(" ", "%20"), close + 1  # as CommonMark renders it
    depth, index, out = 0, at, []
    while index < len(text) and not text[index].isspace():
        char = text[index]
        if char == "\\" and index + 1 < len(text) and not text[index + 1].isalnum():
            out.append(text[index + 1])
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        out.append(char)
        index += 1
    return ("".join(out), index) if depth == 0 and index > at else None


def _markdown_link(text: str, start: int) -> _Link | None:
    """`[label](destination "optional title")` at `start`, with an http(s) destination."""
    label_end = text.find("](", start + 1)
    if label_end < 0 or "]" in text[start + 1:label_end] or label_end == start + 1:
        return None
    found = _destination(text, label_end + 2)
    if found is None or not URL_SCHEME.match(found[0]):
        return None
    href, index = found
    title = re.compile(r"""\s+(?:"[^"]*"|'[^']*')""").match(text, index)
    if title:
        index = title.end()
    while index < len(text) and text[index] == " ":
        index += 1
    if not text.startswith(")", index):
        return None
    return _Link(start, index + 1, text[start + 1:label_end], href)


def _bare_url(text: str, start: int) -> _Link:
    """A bare URL from `start` to the next space or `<`, trimmed the way GFM trims autolinks,
    so `(see https://x.example/a_(b)?q=1)` keeps `a_(b)?q=1` and drops the closing `)`."""
    end = start
    # A backslash ends it too: what follows is escaped text (`markup.markdown_literal`).
    while end < len(text) and not text[end].isspace() and text[end] not in "<\\":
        end += 1
    while end > start:
        url = text[start:end]
        unbalanced = url[-1] == ")" and url.count(")") > url.count("(")
        if url[-1] in TRAILING_PUNCTUATION or unbalanced:
            end -= 1
        elif entity := TRAILING_ENTITY.search(url):
            end -= len(entity[0])
        else:
            break
    return _Link(start, end, text[start:end], text[start:end])


def _inline(text: str) -> list[dict[str, Any]]:
    """Text nodes; Markdown links and bare URLs become link marks so they stay clickable, with
    their parentheses, query strings and fragments intact. A backslash-escaped character is
    literal text, never the start of a link: that is how the renderer writes untrusted text
    (`markup.markdown_literal`), so the escapes must not show."""
    nodes: list[dict[str, Any]] = []
    plain: list[str] = []
    at = 0

    def flush() -> None:
        if plain:
            nodes.append({"type": "text", "text": "".join(plain)})
            plain.clear()

    scan = 0
    while match := LINK_START.search(text, scan):
        if match[0].startswith("\\"):
            plain += [text[at:match.start()], match[0][1]]
            at = scan = match.end()
            continue
        link = (_markdown_link(text, match.start()) if match[0] == "["
                else _bare_url(text, match.start()))
        if link is None or link.href.lower() in ("http://", "https://"):
            scan = match.end()  # not a link after all: keep scanning after its first character
            continue
        plain.append(text[at:link.start])
        flush()
        nodes.append({"type": "text", "text": ESCAPE.sub(r"\1", link.label),
                      "marks": [{"type": "link", "attrs": {"href": link.href}}]})
        at = scan = link.end
    plain.append(text[at:])
    flush()
    return [node for node in nodes if node["text"]]


def _paragraph(lines: list[str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        if index:
            content.append({"type": "hardBreak"})
        content.extend(_inline(line))
    return {"type": "paragraph", "content": content}


def _code(lines: list[str], language: str) -> dict[str, Any]:
    text = "\n".join(lines)
    node: dict[str, Any] = {"type": "codeBlock",
                            "content": [{"type": "text", "text": text}] if text else []}
    if language:
        node["attrs"] = {"language": language}
    return node


def adf(markdown: str) -> dict[str, Any]:
    """A simple Atlassian Document Format doc: what a person needs to read a retro, no more.

    Blank lines separate paragraphs (their lines joined by hard breaks), `#` lines are headings,
    fenced blocks are code blocks; other Markdown (lists, emphasis) stays as readable text.
    """
    blocks: list[dict[str, Any]] = []
    paragraph: list[str] = []
    code: list[str] | None = None
    language = ""

    def flush() -> None:
        if paragraph:
            blocks.append(_paragraph(paragraph))
            paragraph.clear()

    for line in markdown.splitlines():
        fence = FENCE.match(line)
        if code is not None:
            if fence and not fence[2]:
                blocks.append(_code(code, language))
                code = None
            else:
                code.append(line)
        elif fence:
            flush()
            code, language = [], fence[2]
        elif heading := HEADING.match(line):
            flush()
            blocks.append({"type": "heading", "attrs": {"level": len(heading[1])},
                           "content": _inline(heading[2])})
        elif line.strip():
            paragraph.append(line.rstrip())
        else:
            flush()
    flush()
    if code is not None:
        blocks.append(_code(code, language))
    return {"type": "doc", "version": 1, "content": blocks}


def adf_markdown(doc: dict[str, Any]) -> str:
    """An ADF document read back as Markdown enough to find its sections: headings as `#`
    lines, every other block as its text, blocks split by blank lines."""
    def text(nodes: list[dict[str, Any]]) -> str:
        return "".join("\n" if node.get("type") == "hardBreak"
                       else node.get("text", "") or text(node.get("content") or [])
                       for node in nodes)

    blocks = []
    for block in doc.get("content") or []:
        body = text(block.get("content") or [])
        if block.get("type") == "heading":
            body = "#" * int((block.get("attrs") or {}).get("level", 2)) + " " + body
        blocks.append(body)
    return "\n\n".join(blocks)


def _jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Client:
    def __init__(self, url: str, token: str, project: str, *, verify: str | bool = True,
                 timeout_s: float = 10.0, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()  # what a Retry-After HTTP-date is measured from
        self._url = url.rstrip("/")
        self._token = token
        email, colon, api_token = token.partition(":")
        self._basic = (email, api_token) if colon else None
        self._secrets = [token, api_token]
        self._project = {"id": project} if project.isdigit() else {"key": project}
        self._verify = verify
        self._timeout_s = timeout_s
        self._jira: JIRA | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Release the pooled connections (the daemon's shutdown, and tests)."""
        with self._lock:
            if self._jira is not None:
                self._jira.close()  # type: ignore[no-untyped-call]  # unannotated upstream
                self._jira = None

    def _connected(self) -> JIRA:
        """The library client, built on first use (it fetches serverInfo); worker thread only."""
        with self._lock:
            if self._jira is None:
                options = {"verify": self._verify, "rest_api_version": REST_API_VERSION}
                if self._basic:
                    client = JIRA(server=self._url, options=options, basic_auth=self._basic,
                                  max_retries=0, timeout=self._timeout_s)
                else:
                    client = JIRA(server=self._url, options=options, token_auth=self._token,
                                  max_retries=0, timeout=self._timeout_s)
                if client.deploymentType != "Cloud":
                    client.close()  # type: ignore[no-untyped-call]  # unannotated upstream
                    raise Permanent(f"Jira at {self._url} is not Jira Cloud "
                                    f"(deploymentType={client.deploymentType!r})")
                self._jira = client
            return self._jira

    async def find_by_marker(self, marker: str) -> IssueRef | None:
        def find() -> IssueRef | None:
            # Asking for a field makes /search/jql return keys, not only ids.
            found = self._connected().enhanced_search_issues(
                f"labels = {_jql_string(marker)}", maxResults=1, fields=["summary"],
                json_result=True)
            issues = found.get("issues", []) if isinstance(found, dict) else []
            return self._ref(issues[0]["key"]) if issues else None

        return await self._call("find issue by marker", find)

    async def find_state(self, marker: str) -> IssueState | None:
        """`GET /rest/api/3/search/jql` with `fields=status,description,assignee`: the status
        category `done` is closed, the description an ADF document
        (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-get)."""
        def find() -> IssueState | None:
            found = self._connected().enhanced_search_issues(
                f"labels = {_jql_string(marker)}", maxResults=1,
                fields=["status", "description", "assignee"], json_result=True)
            issues = found.get("issues", []) if isinstance(found, dict) else []
            if not issues:
                return None
            fields = issues[0].get("fields") or {}
            category = (((fields.get("status") or {}).get("statusCategory") or {})
                        .get("key"))
            description = fields.get("description")
            return IssueState(self._ref(issues[0]["key"]), closed=category == "done",
                              body=adf_markdown(description) if isinstance(description, dict)
                              else str(description or ""),
                              assignee=str((fields.get("assignee") or {})
                                           .get("displayName", "")))

        return await self._call("read issue state", find)

    async def create(self, draft: IssueDraft) -> IssueRef:
        def create() -> IssueRef:
            title, body = title_and_body(draft, LIMITS, marker_in_body=False)
            fields: dict[str, Any] = {
                "project": self._project,
                "issuetype": {"name": ISSUE_TYPE},
                "summary": title,
                "description": adf(body),
                "labels": labels_with_marker(draft, LIMITS),
            }
            if draft.assignee:
                fields["assignee"] = {"accountId": draft.assignee}
            issue = self._connected().create_issue(fields=fields, prefetch=False)
            return self._ref(issue.key)

        return await self._call("create issue", create)

    async def add_note(self, ref: IssueRef, text: str) -> None:
        """`POST /rest/api/3/issue/{issueIdOrKey}/comment` with an ADF `body`
        (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-comments/#api-rest-api-3-issue-issueidorkey-comment-post).
        The library types `body` as text (REST v2) but sends it as given, and v3 wants a
        document: the Markdown goes through the same `adf` conversion as descriptions."""
        def note() -> None:
            self._connected().add_comment(ref.id, cast(str, adf(text)))

        await self._call("add comment", note)

    async def close_issue(self, ref: IssueRef) -> None:
        """Jira has no "close": the issue takes the first transition whose target status is in
        the `done` category (`GET`/`POST /rest/api/3/issue/{key}/transitions`,
        https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-transitions-get)."""
        def close() -> None:
            client = self._connected()
            for transition in client.transitions(ref.id, expand="transitions.fields"):
                category = ((transition.get("to") or {}).get("statusCategory") or {}).get("key")
                if category == "done":
                    client.transition_issue(ref.id, transition["id"])
                    return
            raise Permanent(f"Jira: no transition of {ref.id} leads to a done status")

        await self._call("close issue", close)

    async def create_access(self) -> TrackerAccess:
        """`GET /rest/api/3/mypermissions?projectKey=…&permissions=CREATE_ISSUES`
        (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-permissions/#api-rest-api-3-mypermissions-get):
        `permissions.CREATE_ISSUES.havePermission` for this token in this project."""
        def access() -> TrackerAccess:
            project = ({"projectId": self._project["id"]} if "id" in self._project
                       else {"projectKey": self._project["key"]})
            answer = self._connected().my_permissions(permissions="CREATE_ISSUES", **project)
            held = bool(((answer.get("permissions") or {}).get("CREATE_ISSUES") or {})
                        .get("havePermission"))
            return TrackerAccess(held, "CREATE_ISSUES granted" if held
                                 else "the token lacks CREATE_ISSUES in the project")

        return await self._call("check project permissions", access)

    def _ref(self, key: str) -> IssueRef:
        return IssueRef(id=key, url=f"{self._url}/browse/{key}")

    async def _call(self, what: str, call: Callable[[], T]) -> T:
        what = f"Jira {what}"
        try:
            return await asyncio.to_thread(call)
        except JIRAError as exc:
            headers = exc.response.headers if exc.response is not None else {}
            raise http_failure(what, exc.status_code, headers=headers, detail=exc.text or "",
                               secrets=self._secrets, now_s=self._clock.now()) from None
        except requests.RequestException as exc:
            raise unanswered(what, exc) from None

"""GitHub issues through PyGithub (`POST /repos/{owner}/{repo}/issues`).

`tracker.url` is `https://github.com` (or the API URL) for github.com, or the GitHub Enterprise
Server address, whose REST API lives under `/api/v3`. `tracker.project` is `owner/repo`; an
assignee is a login. Labels and assignees are silently dropped by GitHub when the token lacks
push access, so such a token makes every issue unfindable by marker: give it push access.

Retries are the job runner's: `retry=None` leaves urllib3 with no retries (and without
PyGithub's GithubRetry, which sleeps through rate limits), and `seconds_between_requests=None`,
`seconds_between_writes=None` turn off PyGithub's client-side throttle, which also sleeps.
PyGithub only takes a whole number of seconds as timeout, so `timeout_s` is rounded up.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import requests
from github import Auth, Github, GithubException, RateLimitExceededException
from github.Issue import Issue

from daemon.clock import Clock, SystemClock
from daemon.integrations.base import IssueDraft, IssueRef, IssueState, TrackerAccess
from daemon.integrations.failures import http_failure
from daemon.integrations.tracker import Limits, labels_with_marker, title_and_body, unanswered

T = TypeVar("T")
PUBLIC_API = "https://api.github.com"
# Pinned rather than left to the library's default: 2026-03-10 brought breaking changes.
API_VERSION = "2022-11-28"
LIMITS = Limits(title=256, body=65_536, label=50)
"""What GitHub's validation answers with 422 beyond: "title is too long (maximum is 256
characters)" (https://github.com/DavyJonesLocker/party_foul/pull/122), "body is too long
(maximum is 65536 characters)" (https://github.com/googleapis/release-please/issues/1034), and
"name is too long (maximum is 50 characters)" for a label
(https://github.com/github/docs/issues/32156). The REST reference states none of them."""


def api_url(url: str) -> str:
    """The REST base URL for a github.com or GitHub Enterprise Server address."""
    url = url.rstrip("/")
    if urlsplit(url).hostname in ("github.com", "api.github.com"):
        return PUBLIC_API
    return url if url.endswith("/api/v3") else f"{url}/api/v3"


class Client:
    def __init__(self, url: str, token: str, project: str, *, verify: str | bool = True,
                 timeout_s: float = 10.0, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()  # what a Retry-After HTTP-date is measured from
        self._token = token
        self._github = Github(auth=Auth.Token(token), base_url=api_url(url), verify=verify,
                              timeout=max(1, math.ceil(timeout_s)), retry=None,
                              seconds_between_requests=None, seconds_between_writes=None,
                              lazy=True, api_version=API_VERSION)
        self._project = project
        # lazy: no GET /repos/{o}/{r} now; a missing repo shows up as the first call's 404.
        self._repo = self._github.get_repo(project)

    def close(self) -> None:
        """Release the pooled connections (the daemon's shutdown, and tests)."""
        self._github.close()

    async def find_by_marker(self, marker: str) -> IssueRef | None:
        def find() -> IssueRef | None:
            # The list endpoint, not search: search is indexed and lags behind a fresh create.
            issues = self._repo.get_issues(labels=[marker], state="all")
            first = next(iter(issues), None)
            return _ref(first) if first is not None else None

        return await self._call("find issue by marker", find)

    async def find_state(self, marker: str) -> IssueState | None:
        """`GET /repos/{owner}/{repo}/issues?labels=<marker>&state=all`, whose issues carry
        `state` (`open` or `closed`), `body` and `assignees`
        (https://docs.github.com/en/rest/issues/issues#list-repository-issues)."""
        def find() -> IssueState | None:
            issues = self._repo.get_issues(labels=[marker], state="all")
            first = next(iter(issues), None)
            if first is None:
                return None
            assignees = first.assignees or []
            return IssueState(_ref(first), closed=first.state == "closed",
                              body=first.body or "",
                              assignee=assignees[0].login if assignees else "")

        return await self._call("read issue state", find)

    async def create(self, draft: IssueDraft) -> IssueRef:
        def create() -> IssueRef:
            assignees = [draft.assignee] if draft.assignee else []
            title, body = title_and_body(draft, LIMITS, marker_in_body=True)
            return _ref(self._repo.create_issue(title=title, body=body,
                                                labels=labels_with_marker(draft, LIMITS),
                                                assignees=assignees))

        return await self._call("create issue", create)

    async def add_note(self, ref: IssueRef, text: str) -> None:
        """`POST /repos/{owner}/{repo}/issues/{issue_number}/comments` with `body`
        (https://docs.github.com/en/rest/issues/comments#create-an-issue-comment); the client
        is lazy, so `get_issue` makes no request of its own."""
        def note() -> None:
            self._repo.get_issue(int(ref.id)).create_comment(text)

        await self._call("add comment", note)

    async def close_issue(self, ref: IssueRef) -> None:
        """`PATCH /repos/{owner}/{repo}/issues/{issue_number}` with `state: closed`
        (https://docs.github.com/en/rest/issues/issues#update-an-issue)."""
        def close() -> None:
            self._repo.get_issue(int(ref.id)).edit(state="closed")

        await self._call("close issue", close)

    async def create_access(self) -> TrackerAccess:
        """`GET /repos/{owner}/{repo}` answers `permissions` (admin, maintain, push, triage,
        pull) for the authenticated token (https://docs.github.com/en/rest/repos/repos#get-a-repository).
        Creating an issue needs only pull, but GitHub silently drops labels from anyone below
        triage, and the marker is a label."""
        def access() -> TrackerAccess:
            repo = self._github.get_repo(self._project, lazy=False)
            granted = repo.permissions
            held = [name for name in ("admin", "maintain", "push", "triage", "pull")
                    if granted is not None and getattr(granted, name, False)]
            ok = bool({"push", "triage", "maintain", "admin"} & set(held))
            words = ", ".join(held) or "none"
            return TrackerAccess(ok, f"repository permissions: {words}"
                                 + ("" if ok else "; labelled issues need triage or push"))

        return await self._call("check repository permissions", access)

    async def _call(self, what: str, call: Callable[[], T]) -> T:
        what = f"GitHub {what}"
        try:
            return await asyncio.to_thread(call)
        except GithubException as exc:
            data = exc.data if isinstance(exc.data, dict) else {}
            detail = exc.message or str(data.get("message") or "")
            raise http_failure(what, exc.status, headers=exc.headers or {}, detail=detail,
                               secrets=[self._token], now_s=self._clock.now(),
                               rate_limited=isinstance(exc, RateLimitExceededException)
                               ) from None
        except requests.RequestException as exc:
            raise unanswered(what, exc) from None


def _ref(issue: Issue) -> IssueRef:
    """The issue number (#12) is what people and the repo-scoped API use, not the global id."""
    return IssueRef(id=str(issue.number), url=issue.html_url)

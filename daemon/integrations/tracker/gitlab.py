"""GitLab issues through python-gitlab (`POST /api/v4/projects/:id/issues`).

`tracker.project` is the numeric project id or its path (`group/project`); an assignee is a
username (looked up once per issue) or a numeric user id.

Retries are the job runner's: `retry_transient_errors=False` stops python-gitlab retrying 5xx and
dropped connections, and a `requests` response hook raises `requests.HTTPError` on every 4xx/5xx
before python-gitlab's own 429 loop (`obey_rate_limit`, which sleeps) can look at the answer.
The hook also keeps the response headers, which `GitlabHttpError` drops: without them a 429's
Retry-After would be lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import gitlab
import requests
from gitlab.v4.objects import ProjectIssue

from daemon.clock import Clock, SystemClock
from daemon.integrations.base import IssueDraft, IssueRef, IssueState, TrackerAccess
from daemon.integrations.failures import Permanent, http_failure
from daemon.integrations.tracker import Limits, labels_with_marker, title_and_body, unanswered

T = TypeVar("T")
PLANNER = 15
"""The lowest role that may create issues *with labels* (the marker is a label): Guests may
open issues but GitLab drops their labels. Planner (15) and Reporter (20) may set them
(https://docs.gitlab.com/user/permissions/, "Project planning"); `access_level` values from
https://docs.gitlab.com/api/access_requests/#valid-access-levels."""
LIMITS = Limits(title=255, body=1_048_576)
"""Issue `title` 255 characters (docs/development/issuable-like-models.md, "Important text
fields": https://docs.gitlab.com/development/issuable-like-models/) and `description` at most
1,048,576 characters (https://docs.gitlab.com/api/issues/#new-issue). No published limit for
a label name was found; ours are short."""


def _raise_for_status(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    response.raise_for_status()


class Client:
    def __init__(self, url: str, token: str, project: str, *, verify: str | bool = True,
                 timeout_s: float = 10.0, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()  # what a Retry-After HTTP-date is measured from
        self._token = token
        self._project_id = project
        self._gl = gitlab.Gitlab(url, private_token=token, ssl_verify=verify, timeout=timeout_s,
                                 retry_transient_errors=False)
        self._gl.session.hooks["response"].append(_raise_for_status)
        # lazy: no request until the first list/create, which then names a missing project.
        self._project = self._gl.projects.get(project, lazy=True)

    def close(self) -> None:
        """Release the pooled connections (the daemon's shutdown, and tests)."""
        self._gl.session.close()

    async def find_by_marker(self, marker: str) -> IssueRef | None:
        def find() -> IssueRef | None:
            found = self._project.issues.list(labels=[marker], state="all", per_page=1,
                                              get_all=False)
            return _ref(found[0]) if found else None

        return await self._call("find issue by marker", find)

    async def find_state(self, marker: str) -> IssueState | None:
        """`GET /projects/:id/issues?labels=<marker>&state=all`, whose issues carry `state`
        (`opened` or `closed`), `description` and `assignees`
        (https://docs.gitlab.com/api/issues/#list-project-issues)."""
        def find() -> IssueState | None:
            found = self._project.issues.list(labels=[marker], state="all", per_page=1,
                                              get_all=False)
            if not found:
                return None
            issue = found[0]
            assignees = issue.attributes.get("assignees") or []
            return IssueState(_ref(issue), closed=issue.attributes.get("state") == "closed",
                              body=str(issue.attributes.get("description") or ""),
                              assignee=str(assignees[0].get("username", "")) if assignees
                              else "")

        return await self._call("read issue state", find)

    async def create(self, draft: IssueDraft) -> IssueRef:
        def create() -> IssueRef:
            title, body = title_and_body(draft, LIMITS, marker_in_body=True)
            data: dict[str, Any] = {
                "title": title,
                "description": body,
                "labels": ",".join(labels_with_marker(draft, LIMITS)),
            }
            if draft.assignee:
                data["assignee_ids"] = [self._user_id(draft.assignee)]
            return _ref(self._project.issues.create(data))

        return await self._call("create issue", create)

    async def add_note(self, ref: IssueRef, text: str) -> None:
        """`POST /projects/:id/issues/:issue_iid/notes` with `body`
        (https://docs.gitlab.com/ee/api/notes.html#create-new-issue-note); the lazy issue
        object makes it one request."""
        def note() -> None:
            self._project.issues.get(int(ref.id), lazy=True).notes.create({"body": text})

        await self._call("add note", note)

    async def close_issue(self, ref: IssueRef) -> None:
        """`PUT /projects/:id/issues/:iid` with `state_event=close`
        (https://docs.gitlab.com/api/issues/#edit-an-issue)."""
        def close() -> None:
            issue = self._project.issues.get(int(ref.id), lazy=True)
            issue.state_event = "close"
            issue.save()

        await self._call("close issue", close)

    async def create_access(self) -> TrackerAccess:
        """The role from `GET /projects/:id` (`permissions.project_access` / `group_access`)
        and the token's scopes from `GET /personal_access_tokens/self`
        (https://docs.gitlab.com/api/personal_access_tokens/#get-single-personal-access-token):
        a `read_api` token reads the project fine but creates nothing."""
        def access() -> TrackerAccess:
            project = self._gl.projects.get(self._project_id)
            permissions = project.attributes.get("permissions") or {}
            levels = [int((permissions.get(kind) or {}).get("access_level") or 0)
                      for kind in ("project_access", "group_access")]
            token = self._gl.http_get("/personal_access_tokens/self")
            scopes = token.get("scopes", []) if isinstance(token, dict) else []
            if "api" not in scopes:
                return TrackerAccess(False, f"the token's scopes are {', '.join(scopes) or 'none'}"
                                            "; creating issues needs `api`")
            if max(levels) < PLANNER:
                return TrackerAccess(False, f"the token's role in the project is access level "
                                            f"{max(levels)}; labelled issues need Planner (15) "
                                            "or higher")
            return TrackerAccess(True, f"access level {max(levels)}, scopes {', '.join(scopes)}")

        return await self._call("check project permissions", access)

    def _user_id(self, assignee: str) -> int:
        if assignee.isdigit():
            return int(assignee)
        users = self._gl.users.list(username=assignee, get_all=False)
        if not users:
            raise Permanent(f"GitLab: no user named {assignee!r} to assign the issue to")
        return int(users[0].id)

    async def _call(self, what: str, call: Callable[[], T]) -> T:
        what = f"GitLab {what}"
        try:
            return await asyncio.to_thread(call)
        except requests.HTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else None
            headers = response.headers if response is not None else {}
            raise http_failure(what, status, headers=headers, detail=_detail(response),
                               secrets=[self._token], now_s=self._clock.now()) from None
        except requests.RequestException as exc:
            raise unanswered(what, exc) from None


def _detail(response: requests.Response | None) -> str:
    """GitLab's own words: `message` (may be a dict of field errors) or `error`."""
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or "")
    return ""


def _ref(issue: ProjectIssue) -> IssueRef:
    """`iid` is the number people and the project-scoped API use (#12), not the global `id`."""
    return IssueRef(id=str(issue.iid), url=str(issue.web_url))

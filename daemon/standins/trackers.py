"""GitLab, GitHub and Jira Cloud issue APIs as local aiohttp servers, for the real client libraries.

Each fake serves just the endpoints tier2gate's tracker clients reach, with the vendor's auth
scheme, status codes and (the parts the libraries read of) response shapes. It records every
request (`requests`, faulted ones included), keeps what was created (`issues`) so a test can say
"exactly one issue", and runs a `FaultPlan` middleware for outages. `answer_delay_s` makes a
create succeed but answer late: the "did it happen?" case the marker lookup exists for.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.test_utils import TestServer

from daemon.standins.faults import FaultPlan

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The vendors' limits (sources in daemon/integrations/tracker/*.py), refused as they refuse them.
GITLAB_TITLE, GITLAB_DESCRIPTION = 255, 1_048_576
GITHUB_TITLE, GITHUB_BODY, GITHUB_LABEL = 256, 65_536, 50
JIRA_SUMMARY, JIRA_DESCRIPTION, JIRA_LABEL = 255, 32_767, 255


@dataclass
class StoredIssue:
    number: str  # GitLab iid, GitHub number, Jira key
    title: str
    body: str  # Markdown (GitLab, GitHub); Jira: the ADF doc's text, blocks split by blank lines
    labels: tuple[str, ...]
    assignee: str | None  # GitLab username, GitHub login, Jira accountId
    url: str
    state: str = "open"
    payload: dict[str, Any] = field(default_factory=dict)  # as the client sent it
    notes: list[str] = field(default_factory=list)  # comments added later, as text (Jira: ADF's)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    credentials: str  # Authorization, or GitLab's PRIVATE-TOKEN as "Bearer <token>"


class FakeTracker:
    """What the three fakes share: server lifecycle, recording, faults, auth, stored issues."""

    unauthorized_body: ClassVar[dict[str, Any]] = {"message": "401 Unauthorized"}

    def __init__(self, token: str) -> None:
        self.token = token
        self.plan = FaultPlan()
        self.requests: list[Recorded] = []
        self.issues: list[StoredIssue] = []
        self.answer_delay_s = 0.0
        self._server: TestServer | None = None

    @property
    def url(self) -> str:
        """The base URL a client is configured with (what `tracker.url` would say)."""
        assert self._server is not None, "start() the fake first"
        return str(self._server.make_url("")).rstrip("/")

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        # aiohttp's default 1 MiB request cap would refuse a GitLab description that GitLab
        # itself accepts (up to 1,048,576 characters); the vendors' own limits are checked below.
        app = web.Application(middlewares=[self._record, self.plan.middleware, self._auth],
                              client_max_size=8 * 1024 * 1024)
        self.routes(app)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server(ssl=ssl_context)

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def authorized(self, credentials: str) -> bool:
        return credentials in (f"Bearer {self.token}", f"token {self.token}")

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.endswith(path)]

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(Recorded(request.method, request.raw_path.split("?")[0],
                                      dict(request.query), self._credentials(request)))
        return await handler(request)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.authorized(self._credentials(request)):
            return web.json_response(self.unauthorized_body, status=401)
        return await handler(request)

    def _credentials(self, request: web.Request) -> str:
        return request.headers.get("Authorization", "")

    async def _created(self, issue: StoredIssue) -> None:
        self.issues.append(issue)
        if self.answer_delay_s:
            await asyncio.sleep(self.answer_delay_s)

    def _issue(self, number: str) -> StoredIssue:
        """The stored issue with this number (or key), or the vendor-agnostic 404."""
        for issue in self.issues:
            if issue.number == number:
                return issue
        raise web.HTTPNotFound(text='{"message": "404 Not Found"}',
                               content_type="application/json")

    def _matching(self, labels: str, state: str) -> list[StoredIssue]:
        wanted = {label for label in labels.split(",") if label}
        return [issue for issue in self.issues
                if wanted <= set(issue.labels) and state in ("all", issue.state)]


class FakeGitLab(FakeTracker):
    """`/api/v4/projects/:id/issues` (GET, POST), `…/issues/:iid/notes` (POST) and
    `/api/v4/users`; PRIVATE-TOKEN auth."""

    def __init__(self, token: str, project: str = "ops/retros",
                 users: dict[str, int] | None = None) -> None:
        super().__init__(token)
        self.project = project
        self.users = users if users is not None else {"sam": 42}
        self.access_level = 30  # Developer; 10 (Guest) cannot set labels
        self.scopes = ["api"]  # a read-only token has ["read_api"]

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v4/projects/{project:.+}/issues", self._list)
        app.router.add_post("/api/v4/projects/{project:.+}/issues", self._create)
        app.router.add_post("/api/v4/projects/{project:.+}/issues/{iid}/notes", self._note)
        app.router.add_put("/api/v4/projects/{project:.+}/issues/{iid}", self._edit)
        app.router.add_get("/api/v4/users", self._users)
        app.router.add_get("/api/v4/personal_access_tokens/self", self._token_self)
        # Last: `{project:.+}` would also match the issue paths above.
        app.router.add_get("/api/v4/projects/{project:.+}", self._project)

    def _credentials(self, request: web.Request) -> str:
        private = request.headers.get("PRIVATE-TOKEN")
        return f"Bearer {private}" if private else request.headers.get("Authorization", "")

    def _check_project(self, request: web.Request) -> None:
        if request.match_info["project"] not in (self.project, self.project.replace("/", "%2F")):
            raise web.HTTPNotFound(text='{"message": "404 Project Not Found"}',
                                   content_type="application/json")

    def _json(self, issue: StoredIssue) -> dict[str, Any]:
        assignees = ([{"id": self.users[issue.assignee], "username": issue.assignee}]
                     if issue.assignee in self.users else [])
        return {"id": 1000 + int(issue.number), "iid": int(issue.number), "project_id": 7,
                "title": issue.title, "description": issue.body, "labels": list(issue.labels),
                "state": "opened" if issue.state == "open" else "closed",
                "assignees": assignees, "web_url": issue.url}

    async def _list(self, request: web.Request) -> web.Response:
        self._check_project(request)
        state = request.query.get("state", "all").replace("opened", "open")
        found = self._matching(request.query.get("labels", ""), state)
        per_page = int(request.query.get("per_page", "20"))
        return web.json_response([self._json(issue) for issue in found[:per_page]],
                                 headers={"X-Per-Page": str(per_page), "X-Page": "1",
                                          "X-Total": str(len(found))})

    async def _create(self, request: web.Request) -> web.Response:
        self._check_project(request)
        payload = await request.json()
        if not payload.get("title"):
            return web.json_response({"error": "title is missing"}, status=400)
        too_long = {name: [f"is too long (maximum is {limit} characters)"]
                    for name, limit in (("title", GITLAB_TITLE),
                                        ("description", GITLAB_DESCRIPTION))
                    if len(payload.get(name) or "") > limit}
        if too_long:
            return web.json_response({"message": too_long}, status=400)
        labels = payload.get("labels", "")
        labels = labels.split(",") if isinstance(labels, str) else labels
        by_id = {v: k for k, v in self.users.items()}
        ids = payload.get("assignee_ids") or []
        if any(i not in by_id for i in ids):
            return web.json_response({"message": "404 User Not Found"}, status=404)
        number = str(len(self.issues) + 1)
        issue = StoredIssue(number, payload["title"], payload.get("description", ""),
                            tuple(label for label in labels if label),
                            by_id[ids[0]] if ids else None,
                            f"{self.url}/{self.project}/-/issues/{number}", payload=payload)
        await self._created(issue)
        return web.json_response(self._json(issue), status=201)

    async def _note(self, request: web.Request) -> web.Response:
        self._check_project(request)
        issue = self._issue(request.match_info["iid"])
        body = (await request.json()).get("body")
        if not body:
            return web.json_response({"message": {"note": ["can't be blank"]}}, status=400)
        issue.notes.append(body)
        return web.json_response({"id": 900 + len(issue.notes), "body": body,
                                  "noteable_iid": int(issue.number), "noteable_type": "Issue",
                                  "system": False}, status=201)

    async def _edit(self, request: web.Request) -> web.Response:
        self._check_project(request)
        issue = self._issue(request.match_info["iid"])
        if (await request.json()).get("state_event") == "close":
            issue.state = "closed"
        return web.json_response(self._json(issue))

    async def _project(self, request: web.Request) -> web.Response:
        self._check_project(request)
        return web.json_response({"id": 7, "path_with_namespace": self.project,
                                  "permissions": {"project_access": {
                                      "access_level": self.access_level,
                                      "notification_level": 3}, "group_access": None}})

    async def _token_self(self, request: web.Request) -> web.Response:
        return web.json_response({"id": 1, "name": "tier2gate", "revoked": False,
                                  "active": True, "scopes": self.scopes})

    async def _users(self, request: web.Request) -> web.Response:
        name = request.query.get("username", "")
        found = [{"id": self.users[name], "username": name}] if name in self.users else []
        return web.json_response(found)


class FakeGitHub(FakeTracker):
    """`/repos/{o}/{r}/issues` (GET, POST) and `…/issues/{n}/comments` (POST) under a
    GHE-style `/api/v3`; token/Bearer auth."""

    unauthorized_body: ClassVar[dict[str, Any]] = {"message": "Bad credentials",
                                                   "documentation_url": "https://docs.github.com/rest"}

    def __init__(self, token: str, repo: str = "acme/ops", logins: tuple[str, ...] = ("sam",)
                 ) -> None:
        super().__init__(token)
        self.repo = repo
        self.logins = logins
        # What GET /repos answers for the token; a read-only token has only pull.
        self.permissions = {"admin": False, "maintain": False, "push": True, "triage": True,
                            "pull": True}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/repos/{owner}/{repo}/issues", self._list)
        app.router.add_post("/api/v3/repos/{owner}/{repo}/issues", self._create)
        app.router.add_post("/api/v3/repos/{owner}/{repo}/issues/{number}/comments",
                            self._comment)
        app.router.add_patch("/api/v3/repos/{owner}/{repo}/issues/{number}", self._edit)
        app.router.add_get("/api/v3/repos/{owner}/{repo}", self._repository)

    def _check_repo(self, request: web.Request) -> None:
        if f"{request.match_info['owner']}/{request.match_info['repo']}" != self.repo:
            raise web.HTTPNotFound(text='{"message": "Not Found"}',
                                   content_type="application/json")

    def _json(self, issue: StoredIssue) -> dict[str, Any]:
        api = f"{self.url}/api/v3/repos/{self.repo}/issues/{issue.number}"
        return {"id": 5000 + int(issue.number), "number": int(issue.number), "url": api,
                "html_url": issue.url, "title": issue.title, "body": issue.body,
                "state": issue.state, "labels": [{"name": name} for name in issue.labels],
                "assignees": [{"login": issue.assignee}] if issue.assignee else []}

    async def _list(self, request: web.Request) -> web.Response:
        self._check_repo(request)
        found = self._matching(request.query.get("labels", ""), request.query.get("state", "open"))
        return web.json_response([self._json(issue) for issue in found])

    async def _create(self, request: web.Request) -> web.Response:
        self._check_repo(request)
        payload = await request.json()
        assignees = payload.get("assignees") or []
        if not payload.get("title") or any(a not in self.logins for a in assignees):
            return web.json_response({"message": "Validation Failed"}, status=422)
        errors = [f"{name} is too long (maximum is {limit} characters)"
                  for name, value, limit in (("title", payload["title"], GITHUB_TITLE),
                                             ("body", payload.get("body") or "", GITHUB_BODY))
                  if len(value) > limit]
        errors += [f"name is too long (maximum is {GITHUB_LABEL} characters)"
                   for label in payload.get("labels") or [] if len(label) > GITHUB_LABEL]
        if errors:
            return web.json_response({"message": "Validation Failed", "errors": [
                {"resource": "Issue", "code": "custom", "message": e} for e in errors]},
                status=422)
        number = str(len(self.issues) + 1)
        issue = StoredIssue(number, payload["title"], payload.get("body") or "",
                            tuple(payload.get("labels") or ()),
                            assignees[0] if assignees else None,
                            f"{self.url}/{self.repo}/issues/{number}", payload=payload)
        await self._created(issue)
        return web.json_response(self._json(issue), status=201)

    async def _edit(self, request: web.Request) -> web.Response:
        self._check_repo(request)
        issue = self._issue(request.match_info["number"])
        if (await request.json()).get("state") == "closed":
            issue.state = "closed"
        return web.json_response(self._json(issue))

    async def _repository(self, request: web.Request) -> web.Response:
        self._check_repo(request)
        owner, name = self.repo.split("/")
        return web.json_response({"id": 1296269, "name": name, "full_name": self.repo,
                                  "owner": {"login": owner},
                                  "url": f"{self.url}/api/v3/repos/{self.repo}",
                                  "permissions": self.permissions})

    async def _comment(self, request: web.Request) -> web.Response:
        self._check_repo(request)
        issue = self._issue(request.match_info["number"])
        body = (await request.json()).get("body")
        if not body:
            return web.json_response({"message": "Validation Failed"}, status=422)
        issue.notes.append(body)
        comment_id = 7000 + len(issue.notes)
        return web.json_response({
            "id": comment_id, "body": body,
            "url": f"{self.url}/api/v3/repos/{self.repo}/issues/comments/{comment_id}",
            "html_url": f"{issue.url}#issuecomment-{comment_id}"}, status=201)


def adf_text(doc: dict[str, Any]) -> str:
    """The readable text of an ADF doc: blocks split by blank lines, hard breaks as newlines,
    headings as `#` lines."""

    def inline(nodes: list[dict[str, Any]]) -> str:
        return "".join("\n" if n["type"] == "hardBreak" else n.get("text", "") for n in nodes)

    def block(node: dict[str, Any]) -> str:
        text = inline(node.get("content", []))
        if node.get("type") == "heading":  # kept as Markdown, the way it was written
            return "#" * int((node.get("attrs") or {}).get("level", 1)) + " " + text
        return text

    return "\n\n".join(block(node) for node in doc["content"])


def body_adf(text: str) -> dict[str, Any]:
    """A stored body (blocks split by blank lines) as an ADF doc; `#` blocks are headings, as
    the client's own conversion writes them."""
    blocks: list[dict[str, Any]] = []
    for block in (b for b in text.split("\n\n") if b.strip()):
        hashes = len(block) - len(block.lstrip("#"))
        if 0 < hashes <= 6 and block[hashes:hashes + 1] == " ":
            blocks.append({"type": "heading", "attrs": {"level": hashes},
                           "content": [{"type": "text", "text": block[hashes + 1:].strip()}]})
        else:
            blocks.append({"type": "paragraph", "content": [{"type": "text", "text": block}]})
    return {"type": "doc", "version": 1, "content": blocks}


class FakeJira(FakeTracker):
    """Jira Cloud REST v3: serverInfo, field, search/jql (GET), issue and issue comment (POST);
    Basic auth.

    Only `/rest/api/3` is served (v2 would take plain-text descriptions), and the retired
    `/rest/api/3/search` answers 410 as Cloud does. Like Cloud's /search/jql, issues come back as
    bare ids unless fields are asked for.
    """

    unauthorized_body: ClassVar[dict[str, Any]] = {
        "errorMessages": ["Client must be authenticated to access this resource."]}

    def __init__(self, token: str, email: str = "bot@acme.example", project: str = "OPS",
                 account_ids: tuple[str, ...] = ("5b10ac8d82e05b22cc7d4ef5",)) -> None:
        super().__init__(token)
        self.email = email
        self.project = project
        self.account_ids = account_ids
        self.deployment_type = "Cloud"
        self.can_create = True  # CREATE_ISSUES in the project, per mypermissions

    def authorized(self, credentials: str) -> bool:
        basic = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        return credentials in (f"Basic {basic}", f"Bearer {self.token}")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/rest/api/3/serverInfo", self._server_info)
        app.router.add_get("/rest/api/3/field", self._fields)
        app.router.add_get("/rest/api/3/search/jql", self._search)
        app.router.add_route("*", "/rest/api/3/search", self._search_removed)
        app.router.add_post("/rest/api/3/issue", self._create)
        app.router.add_post("/rest/api/3/issue/{key}/comment", self._comment)
        app.router.add_get("/rest/api/3/issue/{key}/transitions", self._transitions)
        app.router.add_post("/rest/api/3/issue/{key}/transitions", self._transition)
        app.router.add_get("/rest/api/3/mypermissions", self._my_permissions)

    async def _server_info(self, request: web.Request) -> web.Response:
        return web.json_response({"baseUrl": self.url, "version": "1001.0.0-SNAPSHOT",
                                  "versionNumbers": [1001, 0, 0],
                                  "deploymentType": self.deployment_type,
                                  "buildNumber": 100000, "serverTitle": "Jira"})

    async def _fields(self, request: web.Request) -> web.Response:
        return web.json_response([
            {"id": "summary", "name": "Summary", "custom": False, "clauseNames": ["summary"]},
            {"id": "labels", "name": "Labels", "custom": False, "clauseNames": ["labels"]},
        ])

    async def _my_permissions(self, request: web.Request) -> web.Response:
        if request.query.get("projectKey", self.project) != self.project:
            return web.json_response({"errorMessages": ["No project could be found"]},
                                     status=404)
        return web.json_response({"permissions": {"CREATE_ISSUES": {
            "id": "11", "key": "CREATE_ISSUES", "name": "Create Issues", "type": "PROJECT",
            "havePermission": self.can_create}}})

    async def _transitions(self, request: web.Request) -> web.Response:
        self._issue(request.match_info["key"])
        return web.json_response({"transitions": [
            {"id": "21", "name": "In Progress", "to": {"statusCategory": {"key": "indeterminate"}}},
            {"id": "31", "name": "Done", "to": {"statusCategory": {"key": "done"}}}]})

    async def _transition(self, request: web.Request) -> web.Response:
        issue = self._issue(request.match_info["key"])
        if ((await request.json()).get("transition") or {}).get("id") == "31":
            issue.state = "closed"
        return web.Response(status=204)

    async def _search_removed(self, request: web.Request) -> web.Response:
        return web.json_response({"errorMessages": ["The requested API has been removed."]},
                                 status=410)

    async def _search(self, request: web.Request) -> web.Response:
        match = re.fullmatch(r'labels\s*=\s*"([^"\\]+)"', request.query.get("jql", "").strip())
        if match is None:
            return web.json_response({"errorMessages": ["unsupported JQL in the fake"]},
                                     status=400)
        found = self._matching(match[1], "all")[: int(request.query.get("maxResults", "50"))]
        fields = [f for f in request.query.getall("fields", []) if f]
        issues: list[dict[str, Any]] = [
            {"id": str(10000 + int(issue.number.split("-")[1])), "key": issue.number,
             "self": f"{self.url}/rest/api/3/issue/{issue.number}",
             "fields": self._fields_of(issue, fields)} if fields
            else {"id": str(10000 + int(issue.number.split("-")[1]))}
            for issue in found
        ]
        return web.json_response({"issues": issues, "isLast": True})

    def _fields_of(self, issue: StoredIssue, wanted: list[str]) -> dict[str, Any]:
        """The fields asked for, shaped as Cloud answers them: `status.statusCategory.key`
        (`new`, `indeterminate`, `done`), `description` as ADF, `assignee` with `accountId`
        and `displayName` (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-search/#api-rest-api-3-search-jql-get)."""
        names = {name for value in wanted for name in value.split(",")}
        closed = issue.state == "closed"
        every: dict[str, Any] = {
            "summary": issue.title,
            "status": {"name": "Done" if closed else "To Do", "statusCategory": {
                "key": "done" if closed else "new"}},
            "description": body_adf(issue.body),
            "assignee": ({"accountId": issue.assignee, "displayName": issue.assignee}
                         if issue.assignee else None),
        }
        return {name: value for name, value in every.items() if name in names}

    async def _comment(self, request: web.Request) -> web.Response:
        issue = self._issue(request.match_info["key"])
        body = (await request.json()).get("body")
        if not isinstance(body, dict) or body.get("type") != "doc":
            return web.json_response({"errorMessages": [], "errors": {
                "comment": "Comment body is not valid Atlassian Document Format."}}, status=400)
        issue.notes.append(adf_text(body))
        comment_id = str(20000 + len(issue.notes))
        return web.json_response({
            "id": comment_id, "body": body,
            "self": f"{self.url}/rest/api/3/issue/{issue.number}/comment/{comment_id}"},
            status=201)

    async def _create(self, request: web.Request) -> web.Response:
        payload = await request.json()
        fields = payload.get("fields", {})
        errors: dict[str, str] = {}
        if fields.get("project") not in ({"key": self.project}, {"id": "10000"}):
            errors["project"] = "valid project is required"
        if not fields.get("summary"):
            errors["summary"] = "You must specify a summary of the issue."
        description = fields.get("description", {"type": "doc", "version": 1, "content": []})
        if not isinstance(description, dict) or description.get("type") != "doc":
            errors["description"] = "Operation value must be an Atlassian Document."
        if len(fields.get("summary") or "") > JIRA_SUMMARY:
            errors["summary"] = f"Summary can't exceed {JIRA_SUMMARY} characters."
        if isinstance(description, dict) and description.get("type") == "doc" and len(
                adf_text(description)) > JIRA_DESCRIPTION:
            errors["description"] = ("The entered text is too long. It exceeds the allowed "
                                     f"limit of {JIRA_DESCRIPTION:,} characters.")
        labels = fields.get("labels") or []
        if any(" " in label for label in labels):
            errors["labels"] = "The label must not contain spaces."
        if any(len(label) > JIRA_LABEL for label in labels):
            errors["labels"] = (f"The label exceeds the maximum length for a single label of "
                                f"{JIRA_LABEL} characters.")
        assignee = (fields.get("assignee") or {}).get("accountId")
        if assignee is not None and assignee not in self.account_ids:
            errors["assignee"] = f"User '{assignee}' cannot be assigned issues."
        if errors:
            return web.json_response({"errorMessages": [], "errors": errors}, status=400)
        key = f"{self.project}-{len(self.issues) + 1}"
        issue = StoredIssue(key, fields["summary"], adf_text(description), tuple(labels),
                            assignee, f"{self.url}/browse/{key}", payload=payload)
        await self._created(issue)
        number = 10000 + len(self.issues)
        return web.json_response({"id": str(number), "key": key,
                                  "self": f"{self.url}/rest/api/3/issue/{number}"}, status=201)

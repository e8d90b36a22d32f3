"""One conformance suite for the GitLab, GitHub and Jira clients: the real vendor libraries
talking HTTP to local fakes. Creation, the marker lookup that makes retros exactly-once, and how
every kind of failure is classified, with the token never in an error message.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

import pytest
import trustme

from daemon.integrations.base import IssueDraft, IssueRef
from daemon.integrations.tracker import (
    CLIENTS,
    github,
    gitlab,
    jira,
    tracker_from_settings,
    verify_for,
)
from daemon.settings import ConfigError, TlsSettings, TrackerSettings
from daemon.standins.faults import Fault
from daemon.standins.trackers import FakeGitHub, FakeGitLab, FakeJira, FakeTracker
from daemon.workers.retry import Permanent, Retry

GITLAB_TOKEN = "glpat-SECRET-gl-4f2a9c"
GITHUB_TOKEN = "ghp_SECRETgh9c1d77e0"
JIRA_TOKEN = "ATATT3xSECRETjr77b1"
JIRA_EMAIL = "bot@acme.example"
ACCOUNT_ID = "5b10ac8d82e05b22cc7d4ef5"
MARKER = "tier2gate-retro-esc-7f3k"

Client = gitlab.Client | github.Client | jira.Client


@dataclass
class Kit:
    """One tracker under test: its fake, how to build the real client, what it calls things."""

    fake: FakeTracker
    build: Callable[[str, str, str, str | bool, float], Client]
    token: str  # the configured tracker.token
    secret: str  # what must never appear in an error
    project: str
    assignee: str
    endpoints: dict[str, tuple[str, str]]  # operation -> (method, path suffix)
    clients: list[Client] = field(default_factory=list)

    def client(self, *, token: str | None = None, project: str | None = None,
               verify: str | bool = True, timeout_s: float = 5.0, url: str | None = None
               ) -> Client:
        made = self.build(url or self.fake.url, token or self.token, project or self.project,
                          verify, timeout_s)
        self.clients.append(made)
        return made


def draft(marker: str = MARKER, assignee: str | None = None) -> IssueDraft:
    return IssueDraft(title="Retro: checkout 500s for Acme (ESC-7F3K)",
                      body="## What happened\nCheckout failed for Acme.\n\n```\nHTTP 500\n```\n",
                      marker=marker, labels=("retro", "tier2"), assignee=assignee)


def _kit(kind: str) -> Kit:
    if kind == "gitlab":
        return Kit(FakeGitLab(GITLAB_TOKEN),
                   lambda u, t, p, v, s: gitlab.Client(u, t, p, verify=v, timeout_s=s),
                   GITLAB_TOKEN, GITLAB_TOKEN, "ops/retros", "sam",
                   {"find": ("GET", "/issues"), "create": ("POST", "/issues")})
    if kind == "github":
        return Kit(FakeGitHub(GITHUB_TOKEN),
                   lambda u, t, p, v, s: github.Client(u, t, p, verify=v, timeout_s=s),
                   GITHUB_TOKEN, GITHUB_TOKEN, "acme/ops", "sam",
                   {"find": ("GET", "/issues"), "create": ("POST", "/issues")})
    if kind == "jira":
        return Kit(FakeJira(JIRA_TOKEN, email=JIRA_EMAIL),
                   lambda u, t, p, v, s: jira.Client(u, t, p, verify=v, timeout_s=s),
                   f"{JIRA_EMAIL}:{JIRA_TOKEN}", JIRA_TOKEN, "OPS", ACCOUNT_ID,
                   {"find": ("GET", "/search/jql"), "create": ("POST", "/rest/api/3/issue")})
    raise LookupError(f"tracker kind {kind!r} has no kit: add its stand-in and credentials here")


def test_every_tracker_kind_is_wired_and_has_a_kit() -> None:
    """A tracker is one module, one line in `CLIENTS`, its name in `tracker.kind` and a kit
    here: forgetting one of them fails this test rather than a deployment."""
    kinds = set(get_args(TrackerSettings.model_fields["kind"].annotation))
    assert set(CLIENTS) == kinds
    assert all(isinstance(_kit(kind).fake, FakeTracker) for kind in kinds)


@pytest.fixture(params=sorted(CLIENTS))
async def kit(request: pytest.FixtureRequest) -> AsyncIterator[Kit]:
    made = _kit(request.param)
    await made.fake.start()
    yield made
    for client in made.clients:
        client.close()
    await made.fake.close()


async def ensure(client: Client, issue: IssueDraft) -> IssueRef:
    """What the retro job does on every attempt: look the marker up, create only if absent."""
    return await client.find_by_marker(issue.marker) or await client.create(issue)


async def run(client: Client, operation: str) -> IssueRef | None:
    if operation == "find":
        return await client.find_by_marker(MARKER)
    return await client.create(draft())


async def test_create_carries_title_labels_marker_and_assignee(kit: Kit) -> None:
    ref = await kit.client().create(draft(assignee=kit.assignee))

    [issue] = kit.fake.issues
    assert (ref.id, ref.url) == (issue.number, issue.url)
    assert issue.title == draft().title
    assert set(issue.labels) == {"retro", "tier2", MARKER}
    assert issue.assignee == kit.assignee
    assert "Checkout failed for Acme." in issue.body
    if not isinstance(kit.fake, FakeJira):  # Jira: ADF description, marker as a label only
        assert issue.body.rstrip().endswith(f"<!-- tier2gate:marker={MARKER} -->")


async def test_find_by_marker_is_none_before_and_the_issue_after(kit: Kit) -> None:
    client = kit.client()
    assert await client.find_by_marker(MARKER) is None

    created = await client.create(draft())
    await client.create(draft(marker="tier2gate-retro-esc-other"))

    assert await client.find_by_marker(MARKER) == created


async def test_find_then_create_twice_leaves_one_issue(kit: Kit) -> None:
    first = await ensure(kit.client(), draft())
    again = await ensure(kit.client(), draft())  # a retried job, maybe on another replica

    assert first == again
    assert len(kit.fake.issues) == 1


async def test_a_closed_issue_still_counts(kit: Kit) -> None:
    client = kit.client()
    created = await client.create(draft())
    kit.fake.issues[0].state = "closed"

    assert await client.find_by_marker(MARKER) == created


async def test_a_late_answer_is_retried_without_a_second_issue(kit: Kit) -> None:
    client = kit.client(timeout_s=0.5)
    kit.fake.answer_delay_s = 2.0  # created, but the answer misses the client's timeout
    with pytest.raises(Retry):
        await ensure(client, draft())
    kit.fake.answer_delay_s = 0.0

    ref = await ensure(client, draft())

    assert len(kit.fake.issues) == 1
    assert ref.id == kit.fake.issues[0].number


def echoing(status: int, token: str) -> Fault:
    """A vendor error that echoes the token back, in each vendor's error field."""
    words = f"token {token} rejected"
    return Fault(status=status, body=json.dumps({"message": words, "errorMessages": [words]}))


async def faulted(kit: Kit, operation: str, fault: Fault, timeout_s: float = 5.0
                  ) -> Retry | Permanent:
    client = kit.client(timeout_s=timeout_s)
    await client.find_by_marker("tier2gate-warm-up")  # Jira builds its client on first use
    kit.fake.plan.add(fault)
    with pytest.raises((Retry, Permanent)) as caught:
        await run(client, operation)
    method, path = kit.endpoints[operation]
    last = kit.fake.requests[-1]
    assert kit.fake.plan.injected == 1
    assert last.method == method and last.path.endswith(path)  # the fault hit the operation
    assert kit.secret not in str(caught.value)
    error = caught.value
    assert isinstance(error, Retry | Permanent)
    return error


@pytest.mark.parametrize("operation", ["find", "create"])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
async def test_client_errors_are_permanent(kit: Kit, operation: str, status: int) -> None:
    failure = await faulted(kit, operation, echoing(status, kit.secret))

    assert isinstance(failure, Permanent)
    assert f"HTTP {status}" in str(failure) and "rejected" in str(failure)


@pytest.mark.parametrize("operation", ["find", "create"])
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried(kit: Kit, operation: str, status: int) -> None:
    failure = await faulted(kit, operation, echoing(status, kit.secret))

    assert isinstance(failure, Retry) and failure.after_s is None
    assert f"HTTP {status}" in str(failure)


@pytest.mark.parametrize("operation", ["find", "create"])
async def test_429_is_retried_after_the_vendors_wait(kit: Kit, operation: str) -> None:
    failure = await faulted(kit, operation, Fault(status=429, retry_after_s=7))

    assert isinstance(failure, Retry) and failure.after_s == 7


async def test_a_hang_past_the_timeout_is_retried(kit: Kit) -> None:
    failure = await faulted(kit, "create", Fault(delay_s=3.0), timeout_s=0.5)

    assert isinstance(failure, Retry) and "in time" in str(failure)


@pytest.mark.parametrize("operation", ["find", "create"])
async def test_a_connection_reset_is_retried(kit: Kit, operation: str) -> None:
    failure = await faulted(kit, operation, Fault(reset=True))

    assert isinstance(failure, Retry) and "connection" in str(failure)


async def test_a_wrong_token_is_permanent_and_not_shown(kit: Kit) -> None:
    wrong = kit.token.replace("SECRET", "WRONG")
    with pytest.raises(Permanent) as caught:
        await kit.client(token=wrong).create(draft())

    assert "HTTP 401" in str(caught.value)
    assert "WRONG" not in str(caught.value) and not kit.fake.issues


async def test_an_unknown_project_is_permanent(kit: Kit) -> None:
    with pytest.raises(Permanent):
        await kit.client(project="NOPE" if isinstance(kit.fake, FakeJira) else "acme/nope"
                         ).create(draft())
    assert not kit.fake.issues


async def test_tls_with_the_configured_ca(kit: Kit, tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    await kit.fake.close()
    await kit.fake.start(ssl_context=server_ctx)
    assert kit.fake.url.startswith("https://")

    with pytest.raises(Permanent, match="TLS"):
        await kit.client().find_by_marker(MARKER)  # the public CAs don't know this one
    await kit.client(verify=verify_for(TlsSettings(ca_file=ca_file))).create(draft())

    assert len(kit.fake.issues) == 1


# Vendor specifics the shared checks cannot express.

async def test_github_secondary_rate_limit_403_is_retried() -> None:
    made = _kit("github")
    await made.fake.start()
    try:
        message = "You have exceeded a secondary rate limit. Please wait a few minutes."
        failure = await faulted(made, "create", Fault(status=403, body=json.dumps(
            {"message": message})))
    finally:
        for client in made.clients:
            client.close()
        await made.fake.close()

    assert isinstance(failure, Retry) and failure.after_s == 60


async def test_gitlab_assignee_by_id_or_unknown_name() -> None:
    made = _kit("gitlab")
    await made.fake.start()
    try:
        client = made.client()
        await client.create(draft(assignee="42"))
        with pytest.raises(Permanent, match="no user named 'nobody'"):
            await client.create(draft(marker="tier2gate-retro-b", assignee="nobody"))
    finally:
        for opened in made.clients:
            opened.close()
        await made.fake.close()

    assert [issue.assignee for issue in made.fake.issues] == ["sam"]
    assert len(made.fake.calls("GET", "/api/v4/users")) == 1  # numeric ids need no lookup


def test_jira_description_is_a_readable_adf_doc() -> None:
    doc = jira.adf("## Timeline\nline one\nsee [runbook](https://rb.example/x)\n\n"
                   "```python\nprint(1)\n```\n")

    assert doc["type"] == "doc" and doc["version"] == 1
    heading, paragraph, code = doc["content"]
    assert heading == {"type": "heading", "attrs": {"level": 2},
                       "content": [{"type": "text", "text": "Timeline"}]}
    assert [node["type"] for node in paragraph["content"]] == ["text", "hardBreak", "text", "text"]
    assert paragraph["content"][-1]["marks"] == [{"type": "link",
                                                  "attrs": {"href": "https://rb.example/x"}}]
    assert code == {"type": "codeBlock", "attrs": {"language": "python"},
                    "content": [{"type": "text", "text": "print(1)"}]}


async def test_jira_outside_cloud_is_permanent_and_bearer_tokens_work() -> None:
    fake = FakeJira(JIRA_TOKEN, email=JIRA_EMAIL)
    await fake.start()
    bearer = jira.Client(fake.url, JIRA_TOKEN, "OPS", timeout_s=5)
    try:
        assert await bearer.find_by_marker(MARKER) is None
        assert fake.requests[0].credentials == f"Bearer {JIRA_TOKEN}"
        fake.deployment_type = "Server"
        server = jira.Client(fake.url, f"{JIRA_EMAIL}:{JIRA_TOKEN}", "OPS", timeout_s=5)
        with pytest.raises(Permanent, match="not Jira Cloud"):
            await server.find_by_marker(MARKER)
    finally:
        bearer.close()
        await fake.close()


@pytest.mark.parametrize(("kind", "cls"), [("gitlab", gitlab.Client), ("github", github.Client),
                                           ("jira", jira.Client)])
def test_the_factory_picks_by_kind_and_needs_token_and_project(kind: str, cls: type) -> None:
    settings = TrackerSettings(kind=kind, url="https://t.example", token="x:y", project="OPS")
    made = tracker_from_settings(settings, TlsSettings())
    assert isinstance(made, cls)
    made.close()
    with pytest.raises(ConfigError, match=r"tracker\.token"):
        tracker_from_settings(TrackerSettings(kind=kind, project="OPS"), TlsSettings())
    with pytest.raises(ConfigError, match=r"tracker\.project"):
        tracker_from_settings(TrackerSettings(kind=kind, token="t"), TlsSettings())


@pytest.mark.parametrize(("url", "api"), [
    ("https://github.com", "https://api.github.com"),
    ("https://api.github.com/", "https://api.github.com"),
    ("https://ghe.acme.example", "https://ghe.acme.example/api/v3"),
    ("https://ghe.acme.example/api/v3", "https://ghe.acme.example/api/v3"),
])
def test_github_api_url(url: str, api: str) -> None:
    assert github.api_url(url) == api

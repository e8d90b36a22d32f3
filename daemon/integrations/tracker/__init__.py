"""Retro and request-for-help issues in GitLab, GitHub or Jira, chosen by `tracker.kind`.

Each vendor module holds one `Client` implementing `integrations.base.IssueTracker` on top of the
vendor's maintained (synchronous) library, run through `asyncio.to_thread`. The libraries' own
retry and sleep loops are switched off: a sleeping library would hold a worker thread and hide
the failure from the durable job runner, which owns retries and honours Retry-After.

Exactly-once rests on the draft's marker, which every client puts on the issue as a label (all
three trackers can list issues by label, consistently for GitLab and GitHub) and, where the body
is Markdown, as a hidden HTML comment a human can still find when someone strips the label.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import requests

from daemon.clock import Clock
from daemon.integrations.base import IssueDraft, Tracker
from daemon.integrations.failures import Permanent, Retry, transport_failure
from daemon.integrations.shorten import shorten
from daemon.markup import markdown_literal, tracker_title
from daemon.settings import ConfigError, TlsSettings, TrackerSettings

# No vendor answers an issue create in anywhere near this time when it is healthy; beyond it the
# job is better retried (find_by_marker first) than left holding a worker thread.
TIMEOUT_S = 10.0

CLIENTS = {"gitlab": "gitlab", "github": "github", "jira": "jira"}
"""`tracker.kind` → the vendor module of this package whose `Client(url, token, project, *,
verify, timeout_s, clock)` implements `integrations.base.Tracker`: a new tracker is one module,
one line here (and its name in `TrackerSettings.kind`)."""


def marker_comment(marker: str) -> str:
    return f"<!-- tier2gate:marker={marker} -->"


@dataclass(frozen=True)
class Limits:
    """One tracker's documented limits, in characters (sources in each vendor module)."""

    title: int
    body: int
    label: int | None = None  # None: no published limit; our labels are short anyway


def title_and_body(draft: IssueDraft, limits: Limits, *, marker_in_body: bool) -> tuple[str, str]:
    """The title on one line and shortened to fit, and a body that fits, ending in the hidden
    marker comment (GitLab, GitHub: not rendered) when `marker_in_body`.

    A shortened title is kept whole at the top of the body, where it fits; the body is cut
    before the marker, never the marker itself (it is how a retry finds the issue again).
    """
    whole = tracker_title(draft.title)
    title = shorten(whole, limits.title)
    body = draft.body.rstrip()
    if title != whole:
        body = f"**Title:** {markdown_literal(draft.title)}\n\n{body}"
    tail = f"\n\n{marker_comment(draft.marker)}\n" if marker_in_body else ""
    return title, shorten(body, limits.body - len(tail)) + tail


def labels_with_marker(draft: IssueDraft, limits: Limits) -> list[str]:
    """The draft's labels (shortened to the limit) plus the marker label, in order and without
    duplicates. The marker is never shortened: it is built short, and it is the lookup key."""
    labels = [label if limits.label is None else shorten(label, limits.label)
              for label in draft.labels]
    return list(dict.fromkeys((*labels, draft.marker)))


def unanswered(what: str, exc: requests.RequestException) -> Retry | Permanent:
    """A `requests` call that got no HTTP answer, in the shared vocabulary. An exception that
    is not a transport failure (a malformed URL, a missing schema) means the request could not
    even be built: configuration, so permanent."""
    if isinstance(exc, requests.ConnectionError | requests.Timeout
                  | requests.exceptions.ChunkedEncodingError):
        return transport_failure(what, exc, timed_out=isinstance(exc, requests.Timeout))
    return Permanent(f"{what}: request could not be sent ({type(exc).__name__}); check "
                     "tracker.url")


def verify_for(tls: TlsSettings) -> str | bool:
    """What `requests` calls `verify`: the private CA bundle if one is configured."""
    return str(tls.ca_file) if tls.ca_file else True


def tracker_from_settings(tracker: TrackerSettings, tls: TlsSettings,
                          clock: Clock | None = None) -> Tracker:
    """The configured tracker's client. No network call happens here.

    The vendor module is imported only for the configured kind: the three SDKs are heavy to
    import and a deployment uses one.
    """
    token = tracker.token.get_secret_value() if tracker.token else ""
    if not token:
        raise ConfigError(f"tracker.token is required for tracker.kind={tracker.kind}")
    if not tracker.project:
        raise ConfigError(f"tracker.project is required for tracker.kind={tracker.kind}")
    module = importlib.import_module(f"{__name__}.{CLIENTS[tracker.kind]}")
    client: Tracker = module.Client(tracker.url, token, tracker.project, verify=verify_for(tls),
                                    timeout_s=TIMEOUT_S, clock=clock)
    return client

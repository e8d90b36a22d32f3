"""The policy in force, re-read when its file changes: criteria change without a deploy.

A file that became invalid keeps the last good policy in force and makes `/readyz` say why, so
a typo at 3 a.m. neither stops paging nor goes unnoticed.

Only a complete file is put in force. An editor that saves in place truncates the file and
writes it again; read in between, it can be valid YAML with most rules missing, which would
classify an S1 as a request for help. So a changed file is read, and put in force only after it
stayed the same (metadata and content, read twice) for `settle_s`. An atomic rename (write a
temporary file, then `mv` it over the policy) is never seen half-written and is the
recommended way to deploy a policy; it still waits out the settle interval.

The file is read here, outside the pure domain (`daemon.domain.policy_file` parses its text);
`load_policy` reads it once, for the commands that do not watch it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import structlog

from daemon.domain.policy import Policy
from daemon.domain.policy_file import PolicyError, Problem, parse_policy

# structlog's own logger, the one `daemon.logging.get_logger` returns: that module imports
# aiohttp (its access log), which `report` (through `load_policy`) would load for nothing.
log: structlog.typing.FilteringBoundLogger = structlog.get_logger("tier2gate.policy")

_Stat = tuple[int, int, int] | None  # (mtime_ns, size, inode); None when it cannot be read


def _unreadable(path: str | PathLike[str], error: Exception) -> PolicyError:
    return PolicyError(str(path), [Problem("(document)", f"cannot read: {error}")])


def load_policy(path: str | PathLike[str]) -> Policy:
    """Read and validate the policy file at `path`.

    Raises `PolicyError` naming the file for every failure: unreadable (missing, a directory,
    not UTF-8) as `(document): cannot read: <reason>`, invalid with the rule and line that
    `parse_policy` names."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from exc
    return parse_policy(text, str(path))


@dataclass(frozen=True)
class _Pending:
    """A change seen but not yet in force: what the file looked like, and since when."""

    stat: _Stat
    text: str | OSError
    since: float


class PolicySource:
    def __init__(self, path: Path, *, settle_s: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """Load the policy now; raises PolicyError (or OSError) if it cannot be used at start.

        `settle_s`: how long a changed file must stay unchanged before it is put in force
        (0: at once, tests); measured on `monotonic` so that a clock step cannot shorten it."""
        self.path = path
        self.settle_s = settle_s
        self._monotonic = monotonic
        self._policy = load_policy(path)
        self._acted_on = self._stat()  # the file as last put in force (or refused)
        self._pending: _Pending | None = None
        self.problem = ""

    @property
    def fingerprint(self) -> str:
        return self._policy.fingerprint

    def _stat(self) -> _Stat:
        try:
            found = self.path.stat()
        except OSError:
            return None
        return found.st_mtime_ns, found.st_size, found.st_ino

    def _read(self) -> str | OSError:
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return OSError(str(exc))

    def current(self) -> Policy:
        self.refresh()
        return self._policy

    def refresh(self) -> None:
        """Put a changed file in force once it has settled; called on every use and by the
        daemon's watch loop, so a change takes effect (and is announced) even when idle."""
        seen = self._stat()
        if seen == self._acted_on:
            self._pending = None
            return
        now = self._monotonic()
        text = self._read()
        pending = self._pending
        if pending is None or pending.stat != seen or str(pending.text) != str(text):
            if pending is None:
                log.info("policy.change_seen", path=str(self.path), settle_s=self.settle_s)
            self._pending = pending = _Pending(seen, text, now)
        if now - pending.since < self.settle_s:
            return
        self._pending = None
        self._acted_on = seen
        self._apply(text)

    def _apply(self, text: str | OSError) -> None:
        try:
            if isinstance(text, OSError):
                raise _unreadable(self.path, text)
            policy = parse_policy(text, str(self.path))
        except PolicyError as exc:
            self.problem = f"policy {self.path} not reloaded, the previous one is in force: {exc}"
            log.error("policy.reload_failed", error=str(exc))
            return
        self.problem = ""
        before = self._policy.fingerprint
        self._policy = policy
        log.info("policy.reloaded", path=str(self.path), previous=before,
                 fingerprint=policy.fingerprint, changed=before != policy.fingerprint)


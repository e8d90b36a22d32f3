"""The policy in force, re-read when its file changes: criteria change without a deploy.

A file that became invalid keeps the last good policy in force and makes `/readyz` say why, so
a typo at 3 a.m. neither stops paging nor goes unnoticed.
"""

from __future__ import annotations

from pathlib import Path

from daemon.domain.policy import Policy
from daemon.domain.policy_file import PolicyError, load_policy
from daemon.logging import get_logger

log = get_logger("tier2gate.policy")


class PolicySource:
    def __init__(self, path: Path) -> None:
        """Load the policy now; raises PolicyError (or OSError) if it cannot be used at start."""
        self.path = path
        self._policy = load_policy(path)
        self._mtime_ns = self._stat()
        self.problem = ""

    def _stat(self) -> int:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return -1

    def current(self) -> Policy:
        mtime_ns = self._stat()
        if mtime_ns == self._mtime_ns:
            return self._policy
        self._mtime_ns = mtime_ns
        try:
            self._policy = load_policy(self.path)
        except PolicyError as exc:
            self.problem = f"policy {self.path} not reloaded, the previous one is in force: {exc}"
            log.error("policy.reload_failed", error=str(exc))
        else:
            self.problem = ""
            log.info("policy.reloaded", path=str(self.path))
        return self._policy

"""How a failed side effect is retried: one policy for every integration.

Integrations only *classify* a failure (retry now-ish, retry after the vendor's Retry-After, or
give up); this module owns the timing, the same way for Slack, PagerDuty and the trackers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


class Retry(Exception):
    """Raise from a job handler to be run again later.

    `after_s` is the vendor's own Retry-After when it gave one; it is honoured as a floor.
    """

    def __init__(self, reason: str, after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after_s = after_s


class Permanent(Exception):
    """Raise from a job handler when retrying cannot help (a 400, a 403, bad configuration).

    `code` is the vendor's own error code when it gave one (Slack's `not_in_channel`), so a
    caller can react to a specific refusal; the message stays the human-readable reason.
    """

    def __init__(self, reason: str, code: str = "") -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter (between half and all of the step), capped.

    Jitter spreads retries of many jobs that failed together (a Slack outage) instead of
    returning them in lockstep.
    """

    base_s: float
    max_s: float

    def delay_s(self, attempt: int, retry_after_s: float | None = None,
                rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1`, given `attempt` failures so far."""
        ceiling = min(self.max_s, self.base_s * (2 ** max(0, attempt - 1)))
        jittered = (rng or random).uniform(ceiling / 2, ceiling)
        return jittered if retry_after_s is None else max(retry_after_s, jittered)

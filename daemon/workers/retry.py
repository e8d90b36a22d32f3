"""How a failed side effect is retried: one policy for every integration.

Integrations only *classify* a failure (`integrations.failures`: retry, retry after the vendor's
Retry-After, or give up); this module owns the timing, the same way for every vendor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# The exceptions live with the classifier that decides between them; handlers import them
# from here too, as "what the runner understands".
from daemon.integrations.failures import Permanent, Retry

__all__ = ["Backoff", "Permanent", "Retry"]


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

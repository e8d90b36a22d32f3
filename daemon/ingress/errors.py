"""The one error every vendor payload parser raises for a body it cannot read."""

from __future__ import annotations


class PayloadError(ValueError):
    """Not a webhook body we can read: the endpoint answers 400 and stores nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

"""Structured JSON logs: one event per line, stable dotted names, ids bound from context.

The scrubber is a last line of defence: secrets are `SecretStr` and never formatted on purpose,
but a vendor error body echoing a token must not reach the log either.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

from daemon.integrations.failures import scrub


class SecretScrubber:
    """Replaces any configured secret found in any string of an event with a fixed mark (the
    same `failures.scrub` that cleans every integration's error text)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(secrets)

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value, self._secrets)
        if isinstance(value, dict):
            return {key: self.scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(item) for item in value)
        return value

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]
                 ) -> MutableMapping[str, Any]:
        if not any(self._secrets):
            return event
        return {key: self.scrub(value) for key, value in event.items()}


def configure(level: str = "INFO", fmt: str = "json", secrets: Iterable[str] = (),
              stream: Any = None) -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            SecretScrubber(secrets),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger

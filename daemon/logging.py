"""Structured JSON logs: one event per line, stable dotted names, ids bound from context.

The scrubber is a last line of defence: secrets are `SecretStr` and never formatted on purpose,
but a vendor error body echoing a token must not reach the log either.

Libraries log through the standard `logging` module (aiohttp's `aiohttp.server` errors and
`aiohttp.access`, asyncio, warnings); `configure` sends those through the same processors, so
every line on stdout is one JSON object, tracebacks included, whoever wrote it.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from daemon.integrations.failures import REDACTED, secret_pattern, shortest_form

DESCRIBED = web.RequestKey("described", bool)
"""Set on a request whose outcome a log line of its own already gave (a stored delivery): the
access log may leave it out (`log.access: except_deliveries`)."""


class SecretScrubber:
    """Replaces any configured secret found in any string of an event with a fixed mark (the
    same masking as `failures.scrub`, which cleans every integration's error text), and hands
    the renderer a value JSON has no type for as its text, masked like any other.

    It runs for every log line, a delivery's included, so the common case costs little: the
    regex is built once, strings shorter than any secret's shortest form are not searched,
    and an event in which nothing needs masking is passed on as it is, not copied."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = tuple(secrets)
        self._pattern = secret_pattern(self._secrets)
        self._shortest = shortest_form(self._secrets)

    def scrub(self, value: Any) -> Any:
        """The value as the line may hold it: the very same object when nothing in it changed
        (so the caller can tell by identity, never by the value's own `==`, which a logged
        object may define to raise or to equal anything)."""
        if isinstance(value, str):
            if len(value) < self._shortest or self._pattern is None:
                return value
            masked = self._pattern.sub(REDACTED, value)
            return value if masked == value else masked
        if isinstance(value, dict):  # the renderer writes a key as text too
            pairs = [(self.scrub(key if isinstance(key, str | int | float) or key is None
                                 else _text_of(key)), self.scrub(item))
                     for key, item in value.items()]
            if all(new_key is key and new_item is item for (new_key, new_item), (key, item)
                   in zip(pairs, value.items(), strict=True)):
                return value
            return dict(pairs)
        if isinstance(value, list | tuple):  # a named tuple too, which JSON writes as a list
            items = [self.scrub(item) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return items if isinstance(value, list) else tuple(items)
        if value is None or isinstance(value, int | float):
            return value
        # Any other value is written as its text, structlog's (an exception echoing a vendor's
        # answer, a URL with credentials), masked as that text. Never as itself: the renderer
        # would write a dataclass field by field (a field its repr hides included) and bytes
        # as base64, neither of which the mask would have seen.
        return self.scrub(_text_of(value))

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]
                 ) -> MutableMapping[str, Any]:
        for value in event.values():
            if isinstance(value, str) and len(value) < self._shortest:
                continue
            if self.scrub(value) is not value:
                return {key: self.scrub(item) for key, item in event.items()}
        return event


class _LineHandler(logging.Handler):
    """Writes a formatted standard-library record through structlog's own writer, which holds
    the same per-stream lock: a line from another thread can never land inside one of ours."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._printer = structlog.WriteLogger(stream)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._printer.msg(self.format(record))
        except Exception:  # noqa: BLE001 - logging's contract: a failing handler reports itself
            self.handleError(record)


class UtcStamper:
    """`timestamp` as `TimeStamper(fmt="iso", utc=True)` writes it
    ("2026-11-29T20:23:24.734549Z"; no fraction on a whole second), with the date and time
    of day formatted once a second instead of a `datetime` made and formatted for every line:
    that was a fifth of the instructions of a delivery's `webhook.stored` line."""

    __slots__ = ("_cached",)

    def __init__(self) -> None:
        # One tuple, replaced whole: a thread never pairs one second with another's text.
        self._cached = (-1, "")

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]
                 ) -> MutableMapping[str, Any]:
        now = time.time()
        whole = int(now)
        second, text = self._cached
        if whole != second:
            text = datetime.fromtimestamp(whole, UTC).isoformat().removesuffix("+00:00")
            self._cached = (whole, text)
        micro = int((now - whole) * 1_000_000)
        event["timestamp"] = f"{text}.{micro:06d}Z" if micro else f"{text}Z"
        return event


def _structlog_fallback(value: Any) -> Any:
    """What structlog's JSON renderer writes for a value JSON has no type for."""
    as_log = getattr(value, "__structlog__", None)
    return as_log() if callable(as_log) else repr(value)


def _text_of(value: Any) -> Any:
    """What a value JSON has no type for is written as: its `__structlog__()` when that is
    JSON, else its repr."""
    text = _structlog_fallback(value)
    return text if isinstance(text, str | dict | list | tuple | int | float) else repr(value)


_ENCODER = msgspec.json.Encoder(enc_hook=_structlog_fallback)
_ESCAPING_ENCODER = json.JSONEncoder(default=_structlog_fallback)


def _encode_json(event: Any, **_options: Any) -> str:
    """The event as one line of compact JSON, by msgspec (already the webhook decoder): a
    third of the standard library's time for a delivery's line, and every delivery writes
    one. A value JSON has no type for reaches it as text (`SecretScrubber`); a NaN or an
    infinity is written as `null` (the standard library wrote `NaN`, which is not JSON); text
    as UTF-8 (`configure` makes stdout write what it cannot encode). Text that is not Unicode
    (a lone surrogate: a header decoded with `surrogateescape`), or anything else msgspec
    refuses, is written by the standard library instead, escaped, rather than making the
    call that logged it fail."""
    try:
        return _ENCODER.encode(event).decode()
    except (UnicodeEncodeError, TypeError, ValueError, OverflowError):
        return _ESCAPING_ENCODER.encode(event)


def configure(level: str = "INFO", fmt: str = "json", secrets: Iterable[str] = (),
              stream: Any = None, *, cache_loggers: bool = False) -> None:
    """Every line through one pipeline (module docstring).

    `cache_loggers`: each module's logger is assembled on its first line and kept, instead of
    once per line (structlog's `cache_logger_on_first_use`, its first advice for speed:
    https://www.structlog.org/en/stable/performance.html). `serve` turns it on, where every
    delivery writes a line; a process that configures again, or captures lines with
    `structlog.testing.capture_logs` (the tests), leaves it off, because a kept logger
    no longer sees a later configuration."""
    renderer: Any = (
        structlog.processors.JSONRenderer(_encode_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    out = stream or sys.stdout
    if stream is None and isinstance(out, io.TextIOWrapper):
        # A line holds vendors' text as it is: a terminal or pipe set to another encoding than
        # UTF-8 must not make a log line fail (and the request that wrote it with it).
        out.reconfigure(errors="backslashreplace")
    scrubber = SecretScrubber(secrets)
    stamp = UtcStamper()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            structlog.processors.format_exc_info,
            scrubber,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level]),
        # `WriteLogger` writes the line and its newline in one call, where `PrintLogger`'s
        # print() makes two; both hold structlog's one lock per stream.
        logger_factory=structlog.WriteLoggerFactory(out),
        cache_logger_on_first_use=cache_loggers,
    )
    handler = _LineHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
                           structlog.stdlib.ExtraAdder(), stamp],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, scrubber, renderer],
    ))
    root = logging.getLogger()
    # Replace only our own handler: configuring twice (tests do) must not print lines twice,
    # and a host's handlers (pytest's capture) are not ours to remove.
    root.handlers[:] = [*(h for h in root.handlers if not isinstance(h, _LineHandler)), handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # `warnings` would otherwise print plain text to stderr


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access log as one `http.access` event per request (its default is a line of
    Apache-style text). The query string is left out: it is nobody's business in a log."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info("http.access", extra={
            "method": request.method, "path": request.path, "status": response.status,
            "bytes": response.body_length, "duration_ms": round(time * 1000, 2),
            "remote": request.remote})

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class UndescribedAccessLogger(AccessLogger):
    """`log.access: except_deliveries`: leaves out the requests marked `DESCRIBED` (a webhook
    delivery the store took has its `webhook.stored`/`duplicate`/`stale` line)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        if not request.get(DESCRIBED, False):
            super().log(request, response, time)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger

"""The log pipeline on the hot path: every delivery writes a line, so the renderer and the
scrubber are built once, and the line is the event structlog's JSON renderer writes, compact."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
import structlog
import yarl

from daemon.logging import SecretScrubber, UtcStamper, configure

SECRET = "whsec_UkVDT0dOSVNBQkxFLWluY2lkZW50LWlvLXNlY3JldA=="


class Point(NamedTuple):
    x: int
    label: str


class Described:
    def __structlog__(self) -> str:
        return "described"


class Opaque:
    def __repr__(self) -> str:
        return "<opaque>"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure(level="INFO", fmt="json", secrets=[SECRET], stream=out)
    yield out
    structlog.reset_defaults()


def test_a_line_is_the_event_structlogs_json_renderer_writes(stream: io.StringIO) -> None:
    structlog.get_logger("t").info("webhook.stored", delivery_id="msg_1", n=3,
                                   described=Described(), opaque=Opaque(),
                                   error=f"token {SECRET} echoed", name="Zoë ☕",
                                   ratio=float("nan"))
    [line] = stream.getvalue().splitlines()
    event: dict[str, Any] = json.loads(line)
    assert event["error"] == "token [redacted] echoed"
    assert (event["described"], event["opaque"]) == ("described", "<opaque>")
    assert event["name"] == "Zoë ☕" and "Zoë ☕" in line  # as UTF-8, not escaped
    assert event["ratio"] is None  # NaN is not JSON; the standard library wrote it anyway
    # The same event, key order included, as `JSONRenderer()` writes it, on one compact line.
    ours = {**event, "ratio": float("nan")}
    theirs = json.loads(structlog.processors.JSONRenderer()(None, "info", ours))
    assert list(event) == list(theirs) and {**theirs, "ratio": None} == event
    assert ", " not in line.replace("Zoë ☕", "")


def test_a_clean_event_is_passed_on_as_it_is() -> None:
    scrubber = SecretScrubber([SECRET])
    clean = {"event": "webhook.stored", "delivery_id": "msg_1", "source": "incident_io",
             "event_type": "public_incident.incident_created_v2_with_a_long_name", "n": 3}
    assert scrubber(None, "info", clean) is clean
    dirty = {**clean, "error": f"said {SECRET}"}
    scrubbed = scrubber(None, "info", dirty)
    assert scrubbed is not dirty and scrubbed["error"] == "said [redacted]"
    assert dirty["error"] == f"said {SECRET}"  # the caller's dict is not changed


def test_the_timestamp_is_structlogs_iso_utc_text_of_now() -> None:
    stamper = UtcStamper()
    shape = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"
    theirs = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {})
    assert re.fullmatch(shape, theirs["timestamp"])
    before = datetime.now(UTC) - timedelta(microseconds=1)
    stamps = [stamper(None, "info", {})["timestamp"] for _ in range(3)]
    after = datetime.now(UTC)
    for stamp in stamps:
        assert re.fullmatch(shape, stamp)
        assert before <= datetime.fromisoformat(stamp) <= after


class Echoing:
    """A value JSON has no type for, whose text (repr) echoes what it was given."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Echoing({self.text!r})"


def test_a_secret_is_masked_whatever_holds_it(stream: io.StringIO) -> None:
    """The renderer writes a value JSON has no type for as its repr, and a dict's keys as
    text: a secret there (an exception echoing a vendor's answer, a URL with credentials, a
    header name) is on the line unless the scrubber masks it too."""
    url = yarl.URL(f"https://bot:{SECRET}@hooks.example.com/x")
    structlog.get_logger("t").error(
        "vendor.failed", error=RuntimeError(f"401 for token {SECRET}"), url=url,
        nested={"url": url, SECRET: "as a key"}, items=[Echoing(SECRET)],
        plain=Opaque())
    [line] = stream.getvalue().splitlines()
    assert SECRET not in line
    event: dict[str, Any] = json.loads(line)
    assert event["error"] == "RuntimeError('401 for token [redacted]')"
    assert event["url"] == "URL('https://bot:[redacted]@hooks.example.com/x')"
    assert event["nested"] == {"url": "URL('https://bot:[redacted]@hooks.example.com/x')",
                               "[redacted]": "as a key"}
    assert (event["items"], event["plain"]) == (["Echoing('[redacted]')"], "<opaque>")


def test_a_named_tuple_is_logged_not_refused(stream: io.StringIO) -> None:
    """A tuple is scrubbed item by item; a named tuple's constructor takes no iterable."""
    point = Point(1, f"x {SECRET}")
    structlog.get_logger("t").info("t.point", point=point)
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["point"] == [1, "x [redacted]"]


def test_kept_loggers_write_the_same_line_through_the_same_pipeline() -> None:
    """`serve` keeps each module's logger (`cache_loggers`): the first line assembles it and
    every later one reuses it, so those lines must still be scrubbed, stamped and rendered
    exactly as without."""
    lines, kept = [], []
    for cache_loggers in (False, True):
        out = io.StringIO()
        configure(level="INFO", fmt="json", secrets=[SECRET], stream=out,
                  cache_loggers=cache_loggers)
        try:
            log = structlog.get_logger("t")
            for n in range(2):
                log.info("webhook.stored", delivery_id=f"msg_{n}", error=f"echo {SECRET}")
            log.debug("below.the.level")
            # structlog's proxy replaces its own `bind` once it has kept a logger
            kept.append("bind" in vars(log))
        finally:
            structlog.reset_defaults()
        assert structlog.get_config()["cache_logger_on_first_use"] is False
        lines.append([{k: v for k, v in json.loads(line).items() if k != "timestamp"}
                      for line in out.getvalue().splitlines()])
    assert lines[0] == lines[1] == [
        {"delivery_id": f"msg_{n}", "error": "echo [redacted]", "event": "webhook.stored",
         "level": "info"} for n in range(2)]
    assert kept == [False, True]


def test_a_standard_library_line_and_a_structlog_line_never_interleave() -> None:
    """aiohttp's and asyncio's records go through `_LineHandler`; it writes through the same
    per-stream lock as structlog's writer, each line whole."""
    out = io.StringIO()
    configure(level="INFO", fmt="json", secrets=[SECRET], stream=out, cache_loggers=True)
    try:
        structlog.get_logger("t").info("ours", n=1)
        logging.getLogger("aiohttp.server").warning("theirs %s", SECRET)
    finally:
        logging.getLogger().handlers[:] = [
            h for h in logging.getLogger().handlers if type(h).__name__ != "_LineHandler"]
        structlog.reset_defaults()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["ours", "theirs [redacted]"]


def test_a_line_never_fails_on_a_stdout_that_cannot_encode_it() -> None:
    """Lines hold vendors' text as UTF-8; a stdout set to ASCII writes what it cannot
    encode escaped instead of raising in the request that logged."""
    code = ("from daemon.logging import configure, get_logger; configure();"
            " get_logger('t').info('webhook.stored', customer='Zoë ☕'); print('done')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False,
                          env={**os.environ, "PYTHONIOENCODING": "ascii"}, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    line, after = done.stdout.decode("ascii").splitlines()
    assert '"customer":"Zo\\xeb \\u2615"' in line and after == "done"


@dataclasses.dataclass
class Credentials:
    user: str
    token: str = dataclasses.field(repr=False)


def test_a_value_json_has_no_type_for_is_written_as_its_text_never_as_itself(
        stream: io.StringIO) -> None:
    """The renderer would write a dataclass field by field (the field its repr hides too) and
    bytes as base64, forms the mask never saw (seen: an outside review)."""
    structlog.get_logger("t").error(
        "vendor.failed", config=Credentials("bot", SECRET), configs=[Credentials("b", SECRET)],
        raw=memoryview(SECRET.encode()), text=f"Zoë {SECRET}".encode())
    [line] = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["config"] == "Credentials(user='bot')"
    assert event["configs"] == ["Credentials(user='b')"]
    assert event["raw"].startswith("<memory at ")
    assert event["text"] == "b'Zo\\xc3\\xab [redacted]'"
    encoded = base64.b64encode(SECRET.encode()).decode()
    assert SECRET not in line and encoded not in line and encoded[:20] not in line


def test_text_that_is_not_unicode_never_makes_a_log_call_raise(stream: io.StringIO) -> None:
    """A lone surrogate (a header decoded with `surrogateescape`) is no UTF-8: the line is
    written escaped instead of the call raising in the request that logged (seen: an outside
    review)."""
    structlog.get_logger("t").warning("http.odd", header="ab\udcffcd", keys={"k\udcff": 1},
                                      nested={("a", SECRET): 1})
    logging.getLogger("aiohttp.server").warning("%s", "x\udcff")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["header"] == "ab\udcffcd" and lines[0]["keys"] == {"k\udcff": 1}
    assert lines[0]["nested"] == {"('a', '[redacted]')": 1}
    assert lines[1]["event"] == "x\udcff"


class Ambiguous:
    """Compares like an array: its `==` answers something that is neither true nor false."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("the truth value of a comparison is ambiguous")

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "<ambiguous>"


@dataclasses.dataclass(eq=False)
class EqualToAnything:
    user: str
    token: str = dataclasses.field(repr=False)

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = object.__hash__


def test_a_logged_objects_own_equality_is_never_asked(stream: io.StringIO) -> None:
    """Whether a value changed is told by identity: an object whose `==` raises must not make
    the call fail, and one equal to anything must not pass, inside a container, as unchanged
    and reach the renderer as itself (seen: an outside review; its hidden token was written)."""
    log = structlog.get_logger("t")
    log.info("t.ambiguous", value=Ambiguous(), nested={"a": [Ambiguous()]})
    hidden = EqualToAnything("bot", SECRET)
    log.info("t.equal", value=hidden, nested={"c": hidden}, items=[hidden], pair=(hidden, 1))
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["value"] == "<ambiguous>" and first["nested"] == {"a": ["<ambiguous>"]}
    text = "EqualToAnything(user='bot')"
    assert (second["value"], second["nested"], second["items"], second["pair"]) == (
        text, {"c": text}, [text], [text, 1])
    assert SECRET not in stream.getvalue()

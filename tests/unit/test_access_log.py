"""`log.access`: which requests get an `http.access` line. By default a webhook delivery the
store took has its own line (`webhook.stored` / `duplicate` / `stale`) and no access line."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from daemon.listeners import runner_options
from daemon.logging import DESCRIBED, AccessLogger, UndescribedAccessLogger
from daemon.settings import Settings


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.paths.append(record.__dict__["path"])


def requests() -> list[web.Request]:
    stored = make_mocked_request("POST", "/webhooks/incident-io")
    stored[DESCRIBED] = True
    return [stored, make_mocked_request("POST", "/webhooks/pagerduty"),
            make_mocked_request("GET", "/readyz")]


@pytest.mark.parametrize(("mode", "expected"), [
    ("all", ["/webhooks/incident-io", "/webhooks/pagerduty", "/readyz"]),
    ("except_deliveries", ["/webhooks/pagerduty", "/readyz"]),
])
def test_which_requests_get_an_access_line(mode: str, expected: list[str]) -> None:
    options = runner_options(Settings(log={"access": mode}), access_log=True)
    logger = logging.getLogger(f"test.access.{mode}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    lines = Lines()
    logger.addHandler(lines)
    access = options["access_log_class"](logger, "")
    assert isinstance(access, AccessLogger)
    for request in requests():
        access.log(request, web.Response(status=202), 0.001)
    assert lines.paths == expected


def test_the_default_leaves_out_stored_deliveries_and_off_logs_nothing() -> None:
    assert Settings().log.access == "except_deliveries"
    assert runner_options(Settings(), access_log=True)["access_log_class"] is (
        UndescribedAccessLogger)
    assert runner_options(Settings(log={"access": "off"}), access_log=True)["access_log"] is None

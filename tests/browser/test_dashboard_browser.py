"""The dashboard in a real headless Chromium: see the escalation, press Approve as the SMOC in
demo mode, watch the state change. A screenshot is kept in test-artifacts/."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import IN_CI
from tests.support_process import clean_env, free_port, spawn, tier2gate

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if not os.path.exists(CHROMIUM):
        message = "Chromium is not installed (Debian package `chromium`)"
        if IN_CI:
            pytest.fail(message + "; .ci/run installs it")
        pytest.skip(message)
    log = tmp_path / "demo.log"
    # A port found free can be taken before the demo binds it (by one of the demo's own
    # connections, which draw from the same ephemeral range): the demo then says so and exits,
    # and another port is tried.
    for _ in range(3):
        port = free_port()
        proc = spawn(tier2gate("demo", "--port", str(port)), tmp_path, clean_env(), log)
        deadline = time.monotonic() + 60
        while "press Approve or Decline" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                break
            time.sleep(0.1)
        else:
            break
        if f"cannot listen on port {port}" not in log.read_text():
            pytest.fail(f"the demo did not reach the approval step:\n{log.read_text()}")
    else:
        pytest.fail(f"no free port for the demo in three tries:\n{log.read_text()}")
    yield f"http://127.0.0.1:{port}/", log
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_approving_from_the_dashboard_pages_and_opens_the_retro(demo: tuple[str, Path]) -> None:
    from playwright.sync_api import ViewportSize, expect, sync_playwright

    url, log = demo
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        # The SMOC's phone (an iPhone 12 to 15).
        screen: ViewportSize = {"width": 390, "height": 844}
        page = browser.new_page(viewport=screen)
        page.goto(url)
        waiting = page.locator("article.esc[data-phase='awaiting_approval']")
        expect(waiting).to_have_count(1)
        expect(waiting).to_contain_text("Checkout is down for Acme Corp")
        escalation_id = waiting.get_attribute("id")
        # On the first screen, without scrolling, and Approve big enough for a thumb.
        approve = waiting.locator("form.demo button", has_text="Approve")
        card, button = waiting.bounding_box(), approve.bounding_box()
        assert card is not None and button is not None
        assert card["y"] < screen["height"], card
        assert button["y"] + button["height"] <= screen["height"], button
        assert button["width"] >= 44 and button["height"] >= 44, button
        assert page.evaluate("document.documentElement.scrollWidth") <= screen["width"]
        page.screenshot(path=str(ARTIFACTS / "dashboard-phone-first-screen.png"))
        page.screenshot(path=str(ARTIFACTS / "dashboard-awaiting-approval.png"), full_page=True)
        approve.click()
        page.wait_for_load_state()
        deadline = time.monotonic() + 30
        phase = ""
        shown = page.locator(f"article.esc[id='{escalation_id}']")
        while time.monotonic() < deadline:  # page, acknowledgement, resolution, then the retro
            page.goto(url)
            phase = shown.get_attribute("data-phase") or ""
            if phase == "closed" and "retro opened" in (shown.text_content() or ""):
                break
            time.sleep(0.3)
        assert phase == "closed", log.read_text()
        timeline = shown.locator("details")
        timeline.locator("summary").click()  # the timeline is folded by default
        expect(timeline).to_contain_text("retro opened")
        page.screenshot(path=str(ARTIFACTS / "dashboard-after-approval.png"), full_page=True)
        browser.close()
    narration = log.read_text()
    assert "approved by U0SMOC" in narration
    assert "retro issue opened" in narration

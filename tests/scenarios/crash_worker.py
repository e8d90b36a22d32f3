"""A daemon process for the crash test: the real app, store and runner, one effect kind.

Run as `python -m tests.scenarios.crash_worker DB PORT EFFECT_URL`. With HANG_AFTER_EFFECT=1
the effect is delivered and then the job never finishes, so the test can SIGKILL the process in
the worst window: after the vendor accepted the effect, before we recorded it.
"""

from __future__ import annotations

import asyncio
import os
import sys

import aiohttp
from aiohttp import web

from daemon.app import build_app
from daemon.logging import configure
from daemon.settings import JobSettings, Settings
from daemon.store import Job, open_store


async def effect(job: Job) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        sys.argv[3], headers={"Idempotency-Key": job.key}
    ) as response:
        response.raise_for_status()
    if os.environ.get("HANG_AFTER_EFFECT") == "1":
        await asyncio.Event().wait()


def main() -> None:
    db, port = sys.argv[1], int(sys.argv[2])
    configure()
    settings = Settings(jobs=JobSettings(poll_interval_s=0.05, lease_s=30, drain_timeout_s=1))
    store = open_store(f"sqlite:///{db}", daemon=True)
    app = build_app(settings, store, handlers={"effect": effect})
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()

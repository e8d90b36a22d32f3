"""Slow and greedy clients against `tier2gate serve` with its shipped limits.

Seen before the limits (issue 14): 200 unsigned connections each holding a 1 MB body took the
daemon's RSS from 92 MB to 384 MB (the Kubernetes limit is 512 Mi), and an idle connection
stayed open for more than a minute.

Greedy: 1,000 connections at once each announce a 1 MiB body (the largest allowed), send all of
it but the last byte as fast as they can, and hold. The server's RSS growth is its peak resident
set (`VmHWM`) during the attack minus its resident set (`VmRSS`) just before; the peak of its
open file descriptors, sampled every 10 ms, shows how many connections it held at once. Then
3,000 such connections, with the shipped limits and with the connection cap lifted (the same
code otherwise), to show what the cap is worth. Goal (chosen for the 512 Mi Kubernetes limit
and a ~85 MB idle daemon): growth <= 100 MB with the shipped limits (`http.max_connections`
256, `http.max_buffered_bytes` 16 MiB), at 1,000 and at 3,000 connections.

Idle: 200 connections that send nothing; the figure is how long the server took to close the
last one (shipped `http.idle_timeout_s`: 15 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

from bench.common import HOST, peak_rss_mb, start_serve

GREEDY = 1000
GREEDY_MORE = 3000
IDLE = 200
GOAL_GROWTH_MB = 100.0
BODY = 1024 * 1024
ANSWER_WAIT_S = 40.0  # > http.body_timeout_s (10 s) + lingering: every upload is answered
CHUNK = 64 * 1024


def rss_mb(pid: int) -> float:
    """VmRSS: the resident set now, in MB (10^6 bytes)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmRSS")


async def _greedy(port: int, answers: list[str]) -> None:
    head = (f"POST /webhooks/pagerduty HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Content-Type: application/json\r\nX-PagerDuty-Signature: v1=00\r\n"
            f"Content-Length: {BODY}\r\n\r\n").encode()
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        answers.append("connect_failed")
        return
    try:
        writer.write(head)
        sent = 0
        while sent < BODY - 1:
            piece = min(CHUNK, BODY - 1 - sent)
            writer.write(b"x" * piece)
            await writer.drain()
            sent += piece
        said = await asyncio.wait_for(reader.read(64), ANSWER_WAIT_S)
        answers.append(said[:12].decode(errors="replace") or "closed")
    except (ConnectionError, TimeoutError):
        answers.append("reset")
    finally:
        writer.close()


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


async def _sample_fds(pid: int, peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], open_fds(pid))
        await asyncio.sleep(0.01)


async def greedy_uploads(tmp: Path, connections: int = GREEDY, **extra: str) -> dict[str, Any]:
    serve = start_serve(tmp, **extra)
    try:
        await asyncio.sleep(1.0)  # the job runner's first polls and imports settle
        before = rss_mb(serve.pid)
        fds_before = open_fds(serve.pid)
        peak_fds = [fds_before]
        sampler = asyncio.create_task(_sample_fds(serve.pid, peak_fds))
        answers: list[str] = []
        started = time.monotonic()
        await asyncio.gather(*(_greedy(serve.port, answers) for _ in range(connections)))
        elapsed = time.monotonic() - started
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        peak = peak_rss_mb(serve.pid)
        counts: dict[str, int] = {}
        for answer in answers:
            key = answer.split(" ")[1] if answer.startswith("HTTP/") else answer
            counts[key] = counts.get(key, 0) + 1
        return {"connections": connections, "rss_before_mb": round(before, 1),
                "peak_rss_mb": round(peak, 1), "growth_mb": round(peak - before, 1),
                "goal_growth_mb": GOAL_GROWTH_MB, "met": peak - before <= GOAL_GROWTH_MB,
                "peak_connections": peak_fds[0] - fds_before, "answers": counts,
                "elapsed_s": round(elapsed, 1)}
    finally:
        serve.stop()


async def _idle(port: int) -> float:
    reader, writer = await asyncio.open_connection(HOST, port)
    started = time.monotonic()
    try:
        await asyncio.wait_for(reader.read(), 120)
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.monotonic() - started


async def idle_connections(tmp: Path) -> dict[str, Any]:
    serve = start_serve(tmp)
    try:
        closed_after = await asyncio.gather(*(_idle(serve.port) for _ in range(IDLE)))
        return {"connections": IDLE, "closed_after_max_s": round(max(closed_after), 2),
                "closed_after_min_s": round(min(closed_after), 2)}
    finally:
        serve.stop()


async def slow_clients(tmp: Path) -> dict[str, Any]:
    for name in ("capped", "capped_more", "uncapped_more", "idle"):
        (tmp / name).mkdir()
    return {
        "capped": await greedy_uploads(tmp / "capped"),
        "capped_more": await greedy_uploads(tmp / "capped_more", GREEDY_MORE),
        "uncapped_more": await greedy_uploads(
            tmp / "uncapped_more", GREEDY_MORE, TIER2GATE_HTTP__MAX_CONNECTIONS=str(10 ** 6)),
        "idle": await idle_connections(tmp / "idle"),
    }

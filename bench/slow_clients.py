"""Slow and greedy clients against `tier2gate serve` with its shipped limits.

Seen before the limits (issue 14): 200 unsigned connections each holding a 1 MB body took the
daemon's RSS from 92 MB to 384 MB (the Kubernetes limit is 512 Mi), and an idle connection
stayed open for more than a minute.

Greedy: 200 connections each announce a 1 MiB body (the largest allowed), send all of it but
the last byte as fast as they can, and hold. The server's RSS growth is its peak resident set
(`VmHWM`) during the attack minus its resident set (`VmRSS`) just before. Run twice: with the
shipped `http.max_buffered_bytes` (16 MiB) and with the cap lifted to 1 GiB, the same code
otherwise, to show what the cap is worth. Goal: growth ≤ 64 MB with the cap.

Idle: 200 connections that send nothing; the figure is how long the server took to close the
last one (shipped `http.idle_timeout_s`: 15 s).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bench.common import HOST, peak_rss_mb, start_serve

CONNECTIONS = 200
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
    reader, writer = await asyncio.open_connection(HOST, port)
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


async def greedy_uploads(tmp: Path, **extra: str) -> dict[str, Any]:
    serve = start_serve(tmp, **extra)
    try:
        await asyncio.sleep(1.0)  # the job runner's first polls and imports settle
        before = rss_mb(serve.pid)
        answers: list[str] = []
        started = time.monotonic()
        await asyncio.gather(*(_greedy(serve.port, answers) for _ in range(CONNECTIONS)))
        elapsed = time.monotonic() - started
        peak = peak_rss_mb(serve.pid)
        counts: dict[str, int] = {}
        for answer in answers:
            key = answer.split(" ")[1] if answer.startswith("HTTP/") else answer
            counts[key] = counts.get(key, 0) + 1
        return {"rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
                "growth_mb": round(peak - before, 1), "answers": counts,
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
        closed_after = await asyncio.gather(*(_idle(serve.port) for _ in range(CONNECTIONS)))
        return {"connections": CONNECTIONS, "closed_after_max_s": round(max(closed_after), 2),
                "closed_after_min_s": round(min(closed_after), 2)}
    finally:
        serve.stop()


async def slow_clients(tmp: Path) -> dict[str, Any]:
    for name in ("capped", "uncapped", "idle"):
        (tmp / name).mkdir()
    return {
        "capped": await greedy_uploads(tmp / "capped"),
        "uncapped": await greedy_uploads(
            tmp / "uncapped", TIER2GATE_HTTP__MAX_BUFFERED_BYTES=str(1024 ** 3)),
        "idle": await idle_connections(tmp / "idle"),
    }

"""Signed-webhook load generator (aiohttp client), run as its own process: `loadgen.py SPEC.json`.

The spec says where (`url`), what (`kind`: incident_io | alertmanager), how many
(`count`, plus `warmup` not counted) and how long at most (`duration_s`), and how:
`mode: closed` keeps `concurrency` requests in flight (throughput); `mode: open` starts one
request every 1/`rate` s whatever the answers (latency without coordinated omission). Bodies
are signed per request exactly as incident.io would (Standard Webhooks); every delivery has a
new id, and `incidents` > 0 spreads them over that many incidents (the storm). Prints one JSON
object on stdout.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import INC_SECRET, percentile
from daemon.ingress.signatures import sign_standard_webhook

MARK = "01BENCHINCIDENT0000000000"  # replaced by the incident id in each body
TS_MARK = "2026-11-21T02:00:01Z"


def incident_template(variant: str, event: str = "public_incident.incident_created_v2") -> bytes:
    """`routine`: an everyday S3 escalation (a request for help, no page); `emergency`: the
    SEV1 with "Support exhausted knowledge: Yes" that asks the SMOC for approval."""
    from tests.world import incident

    body = incident(incident_id=MARK, updated_at=TS_MARK, event=event,
                    severity="SEV3" if variant == "routine" else "SEV1")
    return json.dumps(body).encode()


def alert_body(n: int, run: str) -> bytes:
    """One new alert per delivery: a distinct label set each time."""
    return json.dumps([{
        "labels": {"alertname": "CustomerEscalation", "severity": "critical",
                   "service": "checkout", "customer": "Acme Corp", "escalation": f"{run}-{n}"},
        "annotations": {"summary": "Checkout is down for Acme",
                        "description": "Support exhausted knowledge: Yes (INC-4242)"},
        "generatorURL": "http://127.0.0.1/bench",
    }]).encode()


class Requests:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.kind = spec["kind"]
        self.run = spec.get("run_id", f"r{time.time_ns()}")
        self.incidents = int(spec.get("incidents", 0))
        self.offset = int(spec.get("offset", 0))
        if self.kind == "incident_io":
            variant = spec.get("variant", "routine")
            self.template = incident_template(variant)
            self.update = incident_template(variant, "public_incident.incident_updated_v2")

    def build(self, i: int) -> tuple[bytes, dict[str, str]]:
        n = i + self.offset
        if self.kind == "alertmanager":
            return alert_body(n, self.run), {"Content-Type": "application/json"}
        incident_id = (f"01INC{n % self.incidents:05d}" if self.incidents
                       else f"01{self.run}{n:08d}")
        template = self.update if self.incidents and n >= self.incidents else self.template
        body = template.replace(MARK.encode(), incident_id.encode())
        if self.incidents:
            # Created once, then updated over and over; later updates carry later times.
            stamp = f"2026-11-21T02:{(n // self.incidents) // 60 % 60:02d}:" \
                    f"{(n // self.incidents) % 60:02d}Z"
            body = body.replace(TS_MARK.encode(), stamp.encode())
        headers = sign_standard_webhook(body, f"msg_{self.run}_{n}", int(time.time()), INC_SECRET)
        headers["Content-Type"] = "application/json"
        return body, headers


async def closed(spec: dict[str, Any], session: aiohttp.ClientSession, reqs: Requests
                 ) -> dict[str, Any]:
    count, concurrency = int(spec["count"]), int(spec.get("concurrency", 32))
    # `urls`: several servers (e.g. two `--role web` processes), each client coroutine
    # sticking to one as a connection behind a load balancer would
    urls = spec.get("urls") or [spec["url"]]
    warmup = int(spec.get("warmup", 0))
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    next_i = 0

    async def worker(limit: int, deadline: float, record: bool, url: str) -> None:
        nonlocal next_i
        while next_i < limit and time.monotonic() < deadline:
            i = next_i
            next_i += 1
            body, headers = reqs.build(i)
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
            if record:
                latencies.append(time.perf_counter() - started)
                statuses[response.status] += 1

    if warmup:
        deadline = time.monotonic() + 10
        await asyncio.gather(*(worker(warmup, deadline, False, urls[n % len(urls)])
                               for n in range(concurrency)))
    await _start_at(spec)
    started = time.monotonic()
    deadline = started + float(spec["duration_s"])
    await asyncio.gather(*(worker(warmup + count, deadline, True, urls[n % len(urls)])
                           for n in range(concurrency)))
    return _result(statuses, latencies, time.monotonic() - started)


async def opened(spec: dict[str, Any], session: aiohttp.ClientSession, reqs: Requests
                 ) -> dict[str, Any]:
    url, count, rate = spec["url"], int(spec["count"]), float(spec["rate"])
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    lag: list[float] = []

    async def one(i: int, due: float) -> None:
        body, headers = reqs.build(i)
        started = time.perf_counter()
        lag.append(started - due)
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
        latencies.append(time.perf_counter() - started)
        statuses[response.status] += 1

    await _start_at(spec)
    tasks = []
    t0 = time.perf_counter()
    deadline = time.monotonic() + float(spec["duration_s"])
    for i in range(count):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if time.monotonic() > deadline:
            break
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    result = _result(statuses, latencies, time.perf_counter() - t0)
    result["send_lag_p99_ms"] = round(percentile(lag, 99) * 1000, 3) if lag else None
    return result


async def _start_at(spec: dict[str, Any]) -> None:
    at = spec.get("start_at")
    if at:
        await asyncio.sleep(max(0.0, float(at) - time.time()))


def _result(statuses: Counter[int], latencies: list[float], elapsed: float) -> dict[str, Any]:
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    ms = [x * 1000 for x in latencies]
    return {
        "sent": sum(statuses.values()), "ok": ok, "statuses": dict(statuses),
        "elapsed_s": elapsed, "throughput": ok / elapsed if elapsed else 0.0,
        "p50_ms": percentile(ms, 50) if ms else None, "p99_ms": percentile(ms, 99) if ms else None,
        "max_ms": max(ms) if ms else None,
    }


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    reqs = Requests(spec)
    connector = aiohttp.TCPConnector(limit=int(spec.get("concurrency", 256)), force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    gc.freeze()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        if spec["mode"] == "open":
            return await opened(spec, session, reqs)
        return await closed(spec, session, reqs)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))))

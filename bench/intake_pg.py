"""Durable intake on PostgreSQL: one `tier2gate serve` (`--role all`) against two
`--role web` processes and one `--role worker`, same load, same database server.

Each layout gets a fresh schema on the PostgreSQL at `TIER2GATE_BENCH_POSTGRES_URL` (default
the tests' `postgresql://127.0.0.1:5432/test`); the schema is dropped afterwards. The load is
the intake benchmark's closed loop (32 in flight); with two web processes each client
connection sticks to one of them, as behind a load balancer. Rounds interleave the layouts.
Without a reachable server the benchmark is skipped (the reason goes to stderr).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import HOST, PYTHON, Proc, cpu_seconds, free_port, run_loadgen, serve_env, spawn

POSTGRES_URL = os.environ.get("TIER2GATE_BENCH_POSTGRES_URL",
                              os.environ.get("TIER2GATE_TEST_POSTGRES_URL",
                                             "postgresql://127.0.0.1:5432/test"))
START_DELAY_S = 3.0


def _sql(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def reachable() -> str | None:
    """None when the server answers, else why not."""
    try:
        _sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means: skip, and say why
        return f"{type(exc).__name__}: {exc}"
    return None


def _start(tmp: Path, schema: str, role: str, name: str) -> Proc:
    port, admin_port = free_port(), free_port()
    env = serve_env(tmp, port)
    env.update(TIER2GATE_DATABASE_URL=f"{POSTGRES_URL}?search_path={schema}",
               TIER2GATE_ADMIN__PORT=str(admin_port))
    proc = spawn(name, [PYTHON, "-m", "daemon", "serve", "--role", role], tmp,
                 tmp / f"{name}.log", env, port if role != "worker" else admin_port)
    proc.extra.update(role=role, public_port=port)
    return proc


def _layout(tmp: Path, layout: str, spec: dict[str, Any]) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    _sql(f'CREATE SCHEMA "{schema}"')
    run = tmp / f"{layout}-{time.monotonic_ns()}"
    run.mkdir()
    procs: list[Proc] = []
    try:
        if layout == "all":
            procs.append(_start(run, schema, "all", "all"))
        else:
            # The worker first: it runs the migrations the web processes then find done.
            procs.append(_start(run, schema, "worker", "worker"))
            procs[0].wait_http("/readyz")
            procs += [_start(run, schema, "web", f"web{n}") for n in (1, 2)]
        for proc in procs:
            proc.wait_http("/readyz")
        urls = [f"http://{HOST}:{p.extra['public_port']}/webhooks/incident-io"
                for p in procs if p.extra["role"] != "worker"]
        start_at = time.time() + START_DELAY_S
        before: list[float] = []

        def cpu() -> float:
            return sum(cpu_seconds(p.pid) for p in procs)

        import threading

        def sample() -> None:
            time.sleep(max(0.0, start_at - time.time()))
            before.append(cpu())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = run_loadgen({**spec, "url": urls[0], "urls": urls, "kind": "incident_io",
                              "start_at": start_at}, run)
        sampler.join()
        if before and result["ok"]:
            used = cpu() - before[0]
            result["cpu_us_per_req"] = used / result["ok"] * 1e6
        return result
    finally:
        for proc in procs:
            proc.stop()
        _sql(f'DROP SCHEMA "{schema}" CASCADE')


def intake_postgres(tmp: Path, *, rounds: int = 2, duration_s: float = 5.0,
                    concurrency: int = 32) -> dict[str, Any]:
    why = reachable()
    if why is not None:
        return {"skipped": f"PostgreSQL at {POSTGRES_URL} is not reachable ({why})"}
    spec = {"mode": "closed", "count": 100_000, "warmup": 500, "duration_s": duration_s,
            "concurrency": concurrency}
    runs: dict[str, list[dict[str, Any]]] = {"all": [], "split": []}
    for _ in range(rounds):
        for layout in runs:
            runs[layout].append(_layout(tmp, layout, spec))
    per_round = [s["throughput"] / a["throughput"]
                 for a, s in zip(runs["all"], runs["split"], strict=True)]
    return {
        "rps_all": statistics.median(r["throughput"] for r in runs["all"]),
        "rps_two_web_one_worker": statistics.median(r["throughput"] for r in runs["split"]),
        "ratio_split_vs_all": statistics.median(per_round),
        "ratio_rounds": [round(r, 3) for r in per_round],
        "cpu_us_per_req_all": statistics.median(r.get("cpu_us_per_req", 0) for r in runs["all"]),
        "cpu_us_per_req_split": statistics.median(r.get("cpu_us_per_req", 0)
                                                  for r in runs["split"]),
        "errors": {layout: sum(r["sent"] - r["ok"] for r in rs) for layout, rs in runs.items()},
    }

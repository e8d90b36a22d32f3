"""Durable intake: tier2gate against a bare aiohttp handler and against Prometheus Alertmanager.

Every server gets the same load from the same generator (bench/loadgen.py, its own process):
closed-loop throughput at `concurrency` requests in flight for `duration_s` (bounded by
`count`), then open-loop latency at a fixed 200 requests/s. Servers run one at a time, fresh
for every round, rounds interleaved (bare, tier2gate, Alertmanager, bare, ...) so that a noisy
neighbour hurts all of them alike; each throughput is the median over rounds, each ratio the
median of the rounds' ratios.

- tier2gate: `tier2gate serve`, SQLite store in its own temp dir, defaults otherwise (its job
  runner processes every delivery while the load goes on, as in production). Each delivery is a
  new signed incident.io `incident_created_v2` (an S3: a request for help, no vendor calls).
- bare: `ref_server.py bare`, reads the body and answers 202.
- Alertmanager: the Debian package, `POST /api/v2/alerts`, one new alert (distinct label set)
  per delivery, routed to a webhook receiver on a local sink (grouped by alertname, 1 s waits).
- `groupcommit`: a minimal aiohttp server that answers after an fsync'd SQLite group commit:
  the fair limit for a durable intake (`ratio_vs_group_commit`); `percommit` (calibration):
  the same, one commit per request.
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    HOST,
    PYTHON,
    REPO,
    Proc,
    clean_env,
    cpu_seconds,
    free_port,
    peak_rss_mb,
    run_loadgen,
    spawn,
    start_serve,
)

START_DELAY_S = 3.0  # the generator's start-up and warm-up happen before this

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

AM_CONFIG = """\
route:
  receiver: sink
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:{port}/alerts
        send_resolved: false
        max_alerts: 100
"""


def start_ref(tmp: Path, mode: str) -> Proc:
    port = free_port()
    proc = spawn(mode, [PYTHON, str(REPO / "bench" / "ref_server.py"), mode, str(port),
                        str(tmp)], tmp, tmp / f"{mode}.log", clean_env(), port)
    proc.wait_http("/readyz")
    return proc


def start_alertmanager(tmp: Path) -> Proc:
    if ALERTMANAGER is None:
        raise RuntimeError("prometheus-alertmanager is not installed: "
                           "apt-get install -y prometheus-alertmanager")
    sink = start_ref(tmp, "bare")
    config = tmp / "alertmanager.yml"
    config.write_text(AM_CONFIG.format(port=sink.port))
    port = free_port()
    proc = spawn("alertmanager", [
        ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp / 'am-data'}",
        f"--web.listen-address={HOST}:{port}", "--cluster.listen-address=",
        "--log.level=warn",
    ], tmp, tmp / "alertmanager.log", clean_env(), port)
    proc.extra["sink"] = sink
    proc.wait_http("/-/ready")
    return proc


def _target(kind: str, tmp: Path) -> tuple[Proc, str, str]:
    """(process, URL, loadgen kind) for one server, started fresh."""
    if kind == "tier2gate":
        proc = start_serve(tmp, "tier2gate")
        return proc, f"http://{HOST}:{proc.port}/webhooks/incident-io", "incident_io"
    if kind == "alertmanager":
        proc = start_alertmanager(tmp)
        return proc, f"http://{HOST}:{proc.port}/api/v2/alerts", "alertmanager"
    proc = start_ref(tmp, kind)
    return proc, f"http://{HOST}:{proc.port}/webhooks/incident-io", "incident_io"


def _stop(proc: Proc) -> None:
    proc.stop()
    sink = proc.extra.get("sink")
    if sink is not None:
        sink.stop()


def measure(kind: str, tmp: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """One fresh server, one load; adds the server's CPU use and peak RSS to the result."""
    run = tmp / f"{kind}-{time.monotonic_ns()}"
    run.mkdir()
    proc, url, load_kind = _target(kind, run)
    # The generator starts measuring at `start_at` (after its warm-up); the server's CPU time
    # is read at that moment and when the window ends, so it covers the measured requests only.
    start_at = time.time() + START_DELAY_S
    window: list[float] = []

    def sample() -> None:
        time.sleep(max(0.0, start_at - time.time()))
        window.append(cpu_seconds(proc.pid))
        time.sleep(float(spec["duration_s"]) * 0.95)
        window.append(cpu_seconds(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        sampler.start()
        result = run_loadgen({**spec, "url": url, "kind": load_kind, "start_at": start_at}, run)
        sampler.join()
        if len(window) == 2 and result["ok"]:
            seconds = float(spec["duration_s"]) * 0.95
            result["server_cores"] = (window[1] - window[0]) / seconds
            result["cpu_us_per_req"] = result["server_cores"] / result["throughput"] * 1e6
        result["peak_rss_mb"] = peak_rss_mb(proc.pid)
    finally:
        _stop(proc)
    shutil.rmtree(run, ignore_errors=True)
    return result


def intake(tmp: Path, *, rounds: int = 3, duration_s: float = 5.0, concurrency: int = 32,
           latency_s: float = 10.0, calibrate: bool = True) -> dict[str, Any]:
    # groupcommit always runs: it is the fair limit (`ratio_vs_group_commit`)
    kinds = ["bare", "tier2gate", "alertmanager", "groupcommit"] + (
        ["percommit"] if calibrate else [])
    closed = {"mode": "closed", "count": 100_000, "warmup": 500, "duration_s": duration_s,
              "concurrency": concurrency}
    throughput: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for _ in range(rounds):
        for kind in kinds:
            throughput[kind].append(measure(kind, tmp, closed))
    opened = {"mode": "open", "rate": 200, "count": int(200 * latency_s),
              "duration_s": latency_s + 5, "concurrency": 256}
    latency = {kind: measure(kind, tmp, opened) for kind in ("bare", "tier2gate",
                                                             "alertmanager")}

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in throughput[kind])

    figures: dict[str, Any] = {kind: {
        "rps": med(kind, "throughput"), "rps_rounds": [round(r["throughput"])
                                                       for r in throughput[kind]],
        "p99_ms_loaded": med(kind, "p99_ms"),
        "cpu_us_per_req": med(kind, "cpu_us_per_req"),
        "server_cores": med(kind, "server_cores"),
        "errors": sum(r["sent"] - r["ok"] for r in throughput[kind]),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in throughput[kind] + (
            [latency[kind]] if kind in latency else [])),
    } for kind in kinds}
    for kind, result in latency.items():
        figures[kind].update(p50_ms_200rps=result["p50_ms"], p99_ms_200rps=result["p99_ms"],
                             ok_200rps=result["ok"], sent_200rps=result["sent"],
                             send_lag_p99_ms=result["send_lag_p99_ms"])
    def ratio(kind: str, peer: str) -> float:
        """Median over rounds of kind/peer: a round's servers ran seconds apart, so a
        neighbour's load drifting between rounds cancels out of each round's ratio."""
        per_round = [a["throughput"] / b["throughput"]
                     for a, b in zip(throughput[kind], throughput[peer], strict=True)]
        figures.setdefault("ratio_rounds", {})[f"{kind}/{peer}"] = [round(r, 3)
                                                                    for r in per_round]
        return statistics.median(per_round)

    figures["ratio_vs_aiohttp"] = ratio("tier2gate", "bare")
    figures["ratio_vs_alertmanager"] = ratio("tier2gate", "alertmanager")
    # The fair limit: the minimal server that also answers only after an fsync'd commit.
    figures["ratio_vs_group_commit"] = ratio("tier2gate", "groupcommit")
    if calibrate:
        figures["calibration"] = {kind: ratio(kind, "bare")
                                  for kind in ("groupcommit", "percommit")}
    return figures

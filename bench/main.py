"""`bench/run`: every benchmark, one `name: value` line per figure on stdout, then the machine.

Details (per-round figures, latency breakdowns) go to stderr and, with `--json PATH`, to a file.
Each benchmark runs its servers in a temp dir of its own on 127.0.0.1, is bounded in requests
and seconds, and stops everything it started, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import stop_all


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def emit(name: str, value: Any) -> None:
    if isinstance(value, float):
        value = f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    print(f"{name}: {value}", flush=True)


def note(title: str, data: Any) -> None:
    print(f"# {title}: {json.dumps(data, default=str)}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*",
                        default=["intake", "intake_pg", "clicks", "storm", "cold", "slow",
                                 "reads"],
                        help="benchmarks to run (intake, intake_pg, clicks, storm, cold, slow, "
                             "reads)")
    # 5: on a quiet 2-core machine one round's ratio ranged 0.68-0.96 and three rounds'
    # median 0.78-0.86 for the same code; five rounds halve that spread (bench/README).
    parser.add_argument("--rounds", type=int, default=5, help="intake rounds (median taken)")
    parser.add_argument("--json", type=Path, help="also write every detail here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args()

    from bench.cold_start import cold_start
    from bench.flows import click_to_page, storm
    from bench.intake import intake
    from bench.intake_pg import intake_postgres
    from bench.reads import reads
    from bench.slow_clients import slow_clients

    # SIGTERM (not only Ctrl-C) must run the `finally` below, which stops every child.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_at_start = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="tier2gate-bench-"))
    details: dict[str, Any] = {"started": datetime.datetime.now(datetime.UTC).isoformat()}
    began = time.monotonic()
    try:
        if "intake" in args.only:
            (root / "intake").mkdir()
            res = intake(root / "intake", rounds=args.rounds)
            details["intake"] = res
            note("intake", res)
            emit("intake_ratio_vs_aiohttp", res["ratio_vs_aiohttp"])
            emit("intake_ratio_vs_alertmanager", res["ratio_vs_alertmanager"])
            emit("intake_ratio_vs_group_commit", res["ratio_vs_group_commit"])
            emit("intake_rps_group_commit", res["groupcommit"]["rps"])
            emit("intake_server_cpu_us_per_req_group_commit", res["groupcommit"]["cpu_us_per_req"])
            emit("intake_rps_tier2gate", res["tier2gate"]["rps"])
            emit("intake_rps_aiohttp_bare", res["bare"]["rps"])
            emit("intake_rps_alertmanager", res["alertmanager"]["rps"])
            for kind in ("tier2gate", "bare", "alertmanager"):
                emit(f"intake_server_cpu_us_per_req_{'aiohttp_bare' if kind == 'bare' else kind}",
                     res[kind]["cpu_us_per_req"])
            for kind, ratio in res.get("calibration", {}).items():
                emit(f"intake_ratio_calibration_{kind}", ratio)
            emit("ack_p50_ms_at_200rps", res["tier2gate"]["p50_ms_200rps"])
            emit("ack_p99_ms_at_200rps", res["tier2gate"]["p99_ms_200rps"])
            emit("alertmanager_ack_p99_ms_at_200rps", res["alertmanager"]["p99_ms_200rps"])
            emit("aiohttp_bare_ack_p99_ms_at_200rps", res["bare"]["p99_ms_200rps"])
            emit("tier2gate_peak_rss_mb", res["tier2gate"]["peak_rss_mb"])
            emit("alertmanager_peak_rss_mb", res["alertmanager"]["peak_rss_mb"])
        if "intake_pg" in args.only:
            (root / "intake_pg").mkdir()
            res = intake_postgres(root / "intake_pg")
            details["intake_pg"] = res
            note("intake_pg", res)
            if "skipped" in res:
                emit("intake_rps_two_web_one_worker", f"skipped: {res['skipped']}")
            else:
                emit("intake_rps_two_web_one_worker", res["rps_two_web_one_worker"])
                emit("intake_rps_one_all_postgres", res["rps_all"])
                emit("intake_ratio_two_web_one_worker_vs_all", res["ratio_split_vs_all"])
        template = None
        if "clicks" in args.only or "cold" in args.only:
            (root / "clicks").mkdir()
            res = asyncio.run(click_to_page(root / "clicks"))
            template = root / "clicks" / "tier2gate.db"
            details["clicks"] = res
            note("click_to_page", res)
            if "clicks" in args.only:
                emit("click_to_page_p50_ms", res["p50_ms"])
                emit("click_to_page_p99_ms", res["p99_ms"])
                emit("click_to_page_pages", f"{res['pages']}/{res['approvals']}")
        if "storm" in args.only:
            (root / "storm").mkdir()
            res = asyncio.run(storm(root / "storm"))
            details["storm"] = res
            note("storm", res)
            emit("storm_approvals", res["approval_requests"])
            emit("storm_escalations_asked", res["distinct_escalations_asked"])
            emit("storm_deliveries_accepted", res["accepted"])
            emit("storm_deliveries_stored", f"{res['stored_distinct']} distinct of "
                                            f"{res['stored']} rows")
            emit("storm_send_s", res["send_s"])
            emit("storm_drain_s", res["drain_s"])
            emit("storm_ack_p99_ms", res["ack_p99_ms"])
            emit("storm_peak_rss_mb", res["peak_rss_mb"])
        if "slow" in args.only:
            (root / "slow").mkdir()
            res = asyncio.run(slow_clients(root / "slow"))
            details["slow"] = res
            note("slow_clients", res)
            capped, more, uncapped = res["capped"], res["capped_more"], res["uncapped_more"]
            emit("slow_uploads_rss_growth_goal_mb", capped["goal_growth_mb"])
            for suffix, run in (("", capped), ("_3000", more), ("_3000_no_connection_cap",
                                                                  uncapped)):
                emit(f"slow_uploads_rss_growth_mb{suffix}", run["growth_mb"])
                emit(f"slow_uploads_peak_rss_mb{suffix}", run["peak_rss_mb"])
                emit(f"slow_uploads_peak_connections{suffix}", run["peak_connections"])
                emit(f"slow_uploads_answers{suffix}", " ".join(
                    f"{status}x{count}" for status, count in sorted(run["answers"].items())))
            emit("slow_uploads_rss_growth_goal_met",
                 "yes" if capped["met"] and more["met"] else "no")
            emit("idle_connections_closed_after_max_s", res["idle"]["closed_after_max_s"])
        if "cold" in args.only and template is not None:
            (root / "cold").mkdir()
            res = cold_start(root / "cold", template)
            details["cold"] = res
            note("cold_start", res)
            emit("cold_start_s_100k", res["median_s"])
        if "reads" in args.only:
            (root / "reads").mkdir()
            res = reads(root / "reads")
            details["reads"] = res
            note("reads", res)
            emit("dashboard_p99_ms_100k", res["dashboard"]["p99_ms"])
            emit("api_page_p99_ms_100k", res["api_page"]["p99_ms"])
            emit("report_s_100k", res["report"]["median_s"])
            emit("dashboard_cpu_ms_100k", res["dashboard"]["cpu_ms_per_request"])
            emit("api_page_cpu_ms_100k", res["api_page"]["cpu_ms_per_request"])
            emit("report_cpu_s_100k", res["report"]["median_cpu_s"])
    finally:
        stop_all()
        if args.keep:
            print(f"# kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    elapsed = time.monotonic() - began
    details["elapsed_s"] = elapsed
    emit("bench_elapsed_s", elapsed)
    emit("machine_cores", os.cpu_count())
    emit("machine_cpu", cpu_model())
    emit("machine_python", platform.python_version())
    emit("machine_kernel", platform.release())
    emit("machine_loadavg_1m_at_start", load_at_start)
    if args.json:
        args.json.write_text(json.dumps(details, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

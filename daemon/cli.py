"""The `tier2gate` command line: serve, demo, check-config, report and operator commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from daemon import __version__
from daemon.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from daemon.config_check import Finding
    from daemon.domain.policy import Policy

# Each command imports what it needs when it runs, not here: the daemon's modules (aiohttp,
# the vendors, the jobs) took 0.6-0.9 s to import, which every `report` paid before reading a
# row (bench/README.md). The settings are every command's, so they stay above.


def _settings_or_exit() -> Settings | None:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"tier2gate: {exc}", file=sys.stderr)
        return None


def _print_findings(findings: list[Finding]) -> None:
    for finding in findings:
        print(f"tier2gate: {finding.level}: {finding.message}", file=sys.stderr)


ROLES = ("all", "web", "worker")
"""`serve --role`: `all` listens and runs the jobs; on PostgreSQL `web` only listens (stores
and acknowledges deliveries, answers Slack) and `worker` only runs the jobs (admin listener
for probes and metrics), so each scales on its own behind a load balancer."""


def cmd_serve(args: argparse.Namespace) -> int:
    import gc

    import uvloop

    from daemon.app import build_admin_app, build_app
    from daemon.clock import SystemClock
    from daemon.config_check import check_settings, check_teams, errors
    from daemon.domain.policy_file import PolicyError
    from daemon.jobs.registry import handlers
    from daemon.listeners import serve
    from daemon.logging import configure, get_logger
    from daemon.metrics import Metrics
    from daemon.roster import RosterError
    from daemon.store import StoreUnavailable, open_store
    from daemon.wiring import build_parts

    settings = _settings_or_exit()
    if settings is None:
        return 1
    role: str = getattr(args, "role", "all")
    if role != "all" and not settings.database_url.startswith(("postgresql://", "postgres://")):
        print(f"tier2gate: serve --role {role} needs PostgreSQL (database_url: postgresql://...): "
              "a SQLite store is served by one process, which listens and runs the jobs "
              "(--role all)", file=sys.stderr)
        return 2
    configure(settings.log.level, settings.log.format, settings.secrets(), cache_loggers=True)
    log = get_logger("tier2gate.serve")
    findings = check_settings(settings)
    # A daemon that cannot work must not answer /readyz 200: refuse, as check-config does.
    if errors(findings):  # `tier2gate check-config` lists the same, warnings too
        log.error("serve.config_incomplete", mode=settings.mode,
                  problems=[finding.message for finding in errors(findings)])
        return 1
    store = open_store(settings.database_url, daemon=True)
    metrics = Metrics()
    try:
        parts = build_parts(settings, store, SystemClock(), metrics)
    except PolicyError as exc:
        print(f"tier2gate: invalid policy:\n{exc}", file=sys.stderr)
        return 1
    except RosterError as exc:
        print(f"tier2gate: invalid EE roster:\n{exc}", file=sys.stderr)
        return 1
    team_findings = check_teams(settings, parts.deps.policy.current())
    if errors(team_findings):
        log.error("serve.config_incomplete", mode=settings.mode,
                  problems=[finding.message for finding in errors(team_findings)])
        return 1
    findings += team_findings
    app = build_app(settings, store, handlers=handlers(parts.deps), metrics=metrics,
                    checks=[lambda: parts.deps.policy.problem,
                            lambda: parts.deps.roster.problem], on_close=parts.closers,
                    watch=parts.watch, preflight=parts.preflight(), run_jobs=role != "web",
                    roster=parts.deps.roster)
    log.info("serve.starting", version=__version__, role=role, host=settings.http.host,
             port=settings.http.port, admin_host=settings.admin.host,
             admin_port=settings.admin.port, mode=settings.mode, store=store.backend.dialect)
    for finding in findings:
        log.warning("serve.config_warning", problem=finding.message)
    # Everything imported and built so far lives as long as the process: moved out of the
    # collector's generations, each full collection no longer walks it again. Measured on the
    # dashboard over 100,000 escalations: time in the collector 10-14 % -> ~5 % (bench/README).
    gc.freeze()
    try:
        # measured: uvloop gives ~10% more intake per CPU (bench/README)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(app, build_admin_app(app), role=role))
    except StoreUnavailable as exc:
        log.error("serve.store_unavailable", error=str(exc))
        return 1
    except OSError as exc:
        log.error("serve.cannot_listen", error=str(exc))
        return 1
    log.info("serve.stopped")
    return 0


def _settings_and_policy() -> tuple[Settings, Policy] | None:
    """The settings and the policy they name, or None after saying on stderr what is wrong."""
    from daemon.domain.policy_file import PolicyError
    from daemon.policy_source import load_policy
    from daemon.roster import RosterError, load_roster

    settings = _settings_or_exit()
    if settings is None:
        return None
    try:
        policy = load_policy(settings.resolved_policy_file())
    except PolicyError as exc:
        print(f"tier2gate: invalid policy:\n{exc}", file=sys.stderr)
        return None
    if settings.ee.roster_file is not None:
        try:
            load_roster(settings.ee.roster_file)
        except RosterError as exc:
            print(f"tier2gate: invalid EE roster:\n{exc}", file=sys.stderr)
            return None
    return settings, policy


def cmd_check_config(_args: argparse.Namespace) -> int:
    import yaml

    from daemon.config_check import (
        Finding,
        check_against_policy,
        check_settings,
        check_teams,
        errors,
    )
    from daemon.customer_calendar import check_files
    from daemon.domain.policy_file import dump_policy
    from daemon.roster import load_roster, roster_summary
    from daemon.settings import config_path
    from daemon.yamlfile import YamlDoc

    loaded = _settings_and_policy()
    if loaded is None:
        return 1
    settings, policy = loaded
    findings = check_settings(settings) + check_teams(settings, policy)
    findings += [Finding("error", f"customer_events: {problem}") for problem in check_files(
        settings.customer_events, policy.business_hours.zone, datetime.now(UTC))]
    rules = (*policy.rules, *(rule for team in policy.teams or () for rule in team.rules))
    if settings.ee.roster_file is not None and not any(r.ee is not None for r in rules):
        findings.append(Finding("warning", f"ee.roster_file is set but no rule of the policy "
                                           f"({settings.resolved_policy_file()}) offers "
                                           "escalations to the EEs: add `ee: {}` to the request "
                                           "for help rule (see config/policy.yaml)"))
    path, _named = config_path()
    doc = YamlDoc.from_path(path) if path.exists() else None  # read once already: it parses
    findings += check_against_policy(settings, tuple(policy.severity_aliases), doc)
    findings.sort(key=lambda finding: finding.level != "error")
    _print_findings(findings)
    if errors(findings):
        return 1
    print("# effective settings (secrets masked)")
    print(yaml.safe_dump(settings.masked(), sort_keys=False).rstrip())
    print(f"\n# effective policy ({settings.resolved_policy_file()})")
    print(yaml.safe_dump(dump_policy(policy), sort_keys=False).rstrip())
    if settings.ee.roster_file is not None:
        print(f"\n# EE roster ({settings.ee.roster_file})")
        print(yaml.safe_dump(roster_summary(load_roster(settings.ee.roster_file)),
                             sort_keys=False).rstrip())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Escalation analytics from the store. Safe beside a running daemon: it only reads and
    does not take the daemon's lock. Imports only the store and the reporting modules."""
    from daemon.domain.calendar import BusinessHours
    from daemon.domain.policy_file import PolicyError
    from daemon.policy_source import load_policy
    from daemon.reporting import Report, load_report, parse_since, render_text
    from daemon.reporting.ee import EELayer, load_ee_layer, render_ee_text
    from daemon.store import StoreUnavailable, open_store
    try:
        period = parse_since(args.since)
    except ValueError as exc:
        print(f"tier2gate: --since: {exc}", file=sys.stderr)
        return 1
    settings = _settings_or_exit()
    if settings is None:
        return 1
    # The business calendar judges an undecided escalation's weekend and the day of a responder
    # whose time zone is unknown. A broken policy does not hide the figures: the default
    # calendar (UTC, Saturday and Sunday) stands in, and stderr says so.
    try:
        hours = load_policy(settings.resolved_policy_file()).business_hours
    except PolicyError as exc:
        print(f"tier2gate: warning: invalid policy, the report uses UTC weekends:\n{exc}",
              file=sys.stderr)
        hours = BusinessHours()
    until = datetime.now(UTC)

    loaded: list[tuple[Report, EELayer]] = []

    async def load() -> None:
        # Handed over in `loaded`, not as the task's result: on leaving, `asyncio.run` looks
        # up its SIGINT handler, which holds the main task, and Python 3.11's `signal` module
        # formats that handler (the task and its result with it) in an error message it then
        # discards: a year's report took about half a second to format for nothing.
        store = open_store(settings.database_url)
        if store.backend.dialect == "sqlite":
            store.backend.check()  # a report must not create an empty database by accident
        await store.open()
        try:
            loaded.append((await load_report(store, until - period, until, hours,
                                             settings=settings),
                           await load_ee_layer(store, until - period, until)))
        finally:
            await store.close()

    try:
        asyncio.run(load())
    except StoreUnavailable as exc:
        print(f"tier2gate: {exc}", file=sys.stderr)
        return 1
    [(report, ee)] = loaded
    if args.format == "json":
        print(json.dumps({**report.model_dump(mode="json"),
                          "escalation_engineers": ee.model_dump(mode="json")}, indent=2))
    else:
        print(render_text(report) + render_ee_text(ee), end="")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Read-only checks against the configured vendors; exit 1 on any failure."""
    from daemon import preflight
    from daemon.clock import SystemClock
    from daemon.wiring import build_vendors

    loaded = _settings_and_policy()
    if loaded is None:
        return 1
    settings, policy = loaded

    async def check() -> list[preflight.CheckResult]:
        vendors = build_vendors(settings, SystemClock())
        try:
            return await preflight.run_checks(settings, policy, vendors)
        finally:
            for close in vendors.closers:
                await close()

    try:
        results = asyncio.run(check())
    except ConfigError as exc:
        print(f"tier2gate: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(preflight.as_json(results), indent=2))
    else:
        print(preflight.render_text(results), end="")
    return 1 if any(result.failed for result in results) else 0


def _local(host: str) -> str:
    """Where this machine reaches a listener bound to `host` (any address: loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - compared, not bound


def cmd_drill(args: argparse.Namespace) -> int:
    """Rehearse the live path through the running daemon; exit 1 when a step does not come."""
    from daemon.drill import DrillFailed, run_drill

    settings = _settings_or_exit()
    if settings is None:
        return 1
    admin_url = args.admin_url or f"http://{_local(settings.admin.host)}:{settings.admin.port}"
    public_url = args.public_url or f"http://{_local(settings.http.host)}:{settings.http.port}"
    try:
        asyncio.run(run_drill(settings, admin_url.rstrip("/"), public_url.rstrip("/"),
                              auto_approve=args.auto_approve, timeout_s=args.timeout,
                              out=sys.stdout))
    except DrillFailed as exc:
        print(f"tier2gate drill: FAILED: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"tier2gate drill: cannot reach the daemon ({exc}); is `tier2gate serve` "
              "running? (--admin-url)", file=sys.stderr)
        return 1
    return 0


def cmd_handbook(_args: argparse.Namespace) -> int:
    """The policy in words (Markdown) on stdout: `tier2gate handbook > docs/handbook.md`."""
    from daemon.handbook import render_handbook

    loaded = _settings_and_policy()
    if loaded is None:
        return 1
    print(render_handbook(loaded[1], loaded[0]), end="")
    return 0


def cmd_slack_manifest(args: argparse.Namespace) -> int:
    """The Slack app manifest for this public URL: nothing to configure, nothing to read."""
    from daemon.slack_manifest import ManifestError, render_manifest

    try:
        print(render_manifest(args.public_url), end="")
    except ManifestError as exc:
        print(f"tier2gate: --public-url: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from daemon.demo.run import fresh_folder, run_demo

    folder = fresh_folder(Path(args.folder))
    print(f"tier2gate demo: a Saturday night on this machine (store: {folder})", flush=True)
    try:
        return asyncio.run(run_demo(folder, args.port, args.auto_approve))
    except KeyboardInterrupt:
        print("\ntier2gate demo: stopped.")
        return 0
    except OSError as exc:
        print(f"tier2gate demo: cannot listen on port {args.port}: {exc.strerror or exc}; "
              "try --port", file=sys.stderr)
        return 1
    except TimeoutError as exc:
        print(f"tier2gate demo: the story got stuck: {exc}", file=sys.stderr)
        return 1


def _admin(args: argparse.Namespace) -> int:
    from daemon import admin

    settings = _settings_or_exit()
    if settings is None:
        return 1
    if args.command == "migrate":
        return admin.migrate(settings)
    if args.command == "export":
        return admin.export(settings, Path(args.file))
    if args.command == "import":
        return admin.import_(settings, Path(args.file))
    if args.command == "prune":
        return admin.prune(settings, args.dry_run)
    if args.action == "retry":
        if args.job_id is None:
            print("tier2gate: jobs retry needs a JOB_ID (see `tier2gate jobs`)", file=sys.stderr)
            return 1
        return admin.retry_job(settings, args.job_id)
    return admin.jobs(settings, args.state, args.limit)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="tier2gate",
        description="Pages Tier 2 only for emergencies the Support Manager on Call approved.",
    )
    root.add_argument("--version", action="version", version=f"tier2gate {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_cmd = commands.add_parser("serve", help="run the daemon (HTTP server + workers)")
    serve_cmd.add_argument(
        "--role", choices=ROLES, default="all",
        help="all: listen and run the jobs (default, the only role on SQLite); on PostgreSQL, "
             "web: listeners only (stores and acknowledges), worker: the job runner only "
             "(admin listener for probes and metrics)")
    serve_cmd.set_defaults(func=cmd_serve)
    commands.add_parser(
        "check-config", help="validate settings and policy, print them with secrets masked"
    ).set_defaults(func=cmd_check_config)
    commands.add_parser(
        "handbook", help="print the handbook (Markdown): the policy in force in plain words"
    ).set_defaults(func=cmd_handbook)
    manifest = commands.add_parser(
        "slack-manifest", help="print the Slack app manifest for this daemon's public URL")
    manifest.add_argument("--public-url", required=True, metavar="https://HOST",
                          help="where Slack reaches the public listener (https only)")
    manifest.set_defaults(func=cmd_slack_manifest)
    report = commands.add_parser("report", help="escalation analytics for a recent period")
    report.add_argument("--since", default="30d",
                        help="period ending now: 90m, 12h, 30d, 2w (default: %(default)s)")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.set_defaults(func=cmd_report)
    doctor = commands.add_parser(
        "doctor", help="read-only checks of the configured vendors; exit 1 on any failure")
    doctor.add_argument("--format", choices=("text", "json"), default="text")
    doctor.set_defaults(func=cmd_doctor)
    drill = commands.add_parser(
        "drill", help="rehearse the live path end to end through the running daemon, "
                      "marked DRILL")
    drill.add_argument("--auto-approve", action="store_true",
                       help="press Approve as the SMOC with a signed click (CI, stand-ins)")
    drill.add_argument("--timeout", type=float, default=600.0,
                       help="seconds to wait for the whole drill (default %(default)g)")
    drill.add_argument("--admin-url", default="",
                       help="the daemon's admin listener (default: from admin.host/port)")
    drill.add_argument("--public-url", default="",
                       help="the public listener, for --auto-approve (default: http.host/port)")
    drill.set_defaults(func=cmd_drill)
    demo = commands.add_parser(
        "demo", help="the whole flow on this machine with local stand-ins; no accounts needed")
    demo.add_argument("--auto-approve", action="store_true",
                      help="press Approve automatically and exit 0 once the retro issue exists")
    demo.add_argument("--port", type=int, default=8080, help="dashboard port (default 8080)")
    demo.add_argument("--folder", default="var/demo", help="fresh store folder (emptied first)")
    demo.set_defaults(func=cmd_demo)
    commands.add_parser("migrate", help="apply schema migrations and exit").set_defaults(
        func=_admin)
    export = commands.add_parser("export", help="copy the whole store to a JSON-lines file")
    export.add_argument("file")
    export.set_defaults(func=_admin)
    load = commands.add_parser("import", help="load an export into an empty store")
    load.add_argument("file")
    load.set_defaults(func=_admin)
    prune = commands.add_parser(
        "prune", help="remove old webhook bodies and finished jobs now (see retention:)")
    prune.add_argument("--dry-run", action="store_true", help="only count what would go")
    prune.set_defaults(func=_admin)
    jobs = commands.add_parser(
        "jobs", help="list jobs (`jobs --state dead`), or requeue one (`jobs retry JOB_ID`)")
    jobs.add_argument("action", nargs="?", choices=("list", "retry"), default="list")
    jobs.add_argument("job_id", nargs="?", type=int, metavar="JOB_ID")
    jobs.add_argument("--state", choices=("queued", "running", "done", "dead"), default="dead")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.set_defaults(func=_admin)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result

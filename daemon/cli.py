"""The `tier2gate` command line: serve, check-config (and more as the product grows)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml
from aiohttp import web

from daemon import __version__
from daemon.app import build_app
from daemon.clock import SystemClock
from daemon.domain.policy_file import PolicyError, dump_policy, load_policy
from daemon.jobs.registry import handlers
from daemon.logging import configure, get_logger
from daemon.metrics import Metrics
from daemon.settings import ConfigError, Settings, load_settings
from daemon.store import StoreUnavailable, open_store
from daemon.wiring import build_parts


def _settings_or_exit() -> Settings | None:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"tier2gate: {exc}", file=sys.stderr)
        return None


def cmd_serve(_args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    if settings is None:
        return 1
    configure(settings.log.level, settings.log.format, settings.secrets())
    log = get_logger("tier2gate.serve")
    store = open_store(settings.database_url, daemon=True)
    metrics = Metrics()
    try:
        parts = build_parts(settings, store, SystemClock(), metrics)
    except PolicyError as exc:
        print(f"tier2gate: invalid policy:\n{exc}", file=sys.stderr)
        return 1
    app = build_app(settings, store, handlers=handlers(parts.deps), metrics=metrics,
                    checks=[lambda: parts.deps.policy.problem], on_close=parts.closers)
    log.info("serve.starting", version=__version__, host=settings.http.host,
             port=settings.http.port, mode=settings.mode, store=store.backend.dialect)
    try:
        web.run_app(
            app, host=settings.http.host, port=settings.http.port, print=None,
            access_log=None, shutdown_timeout=settings.http.shutdown_timeout_s,
        )
    except StoreUnavailable as exc:
        log.error("serve.store_unavailable", error=str(exc))
        return 1
    except OSError as exc:
        log.error("serve.cannot_listen", error=str(exc))
        return 1
    log.info("serve.stopped")
    return 0


def cmd_check_config(_args: argparse.Namespace) -> int:
    settings = _settings_or_exit()
    if settings is None:
        return 1
    try:
        policy = load_policy(settings.resolved_policy_file())
    except PolicyError as exc:
        print(f"tier2gate: invalid policy:\n{exc}", file=sys.stderr)
        return 1
    print("# effective settings (secrets masked)")
    print(yaml.safe_dump(settings.masked(), sort_keys=False).rstrip())
    print(f"\n# effective policy ({settings.resolved_policy_file()})")
    print(yaml.safe_dump(dump_policy(policy), sort_keys=False).rstrip())
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="tier2gate",
        description="Pages Tier 2 only for emergencies the Support Manager on Call approved.",
    )
    root.add_argument("--version", action="version", version=f"tier2gate {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the daemon (HTTP server + workers)").set_defaults(
        func=cmd_serve
    )
    commands.add_parser(
        "check-config", help="validate settings and policy, print them with secrets masked"
    ).set_defaults(func=cmd_check_config)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result

"""The two listeners of `tier2gate serve` (and the demo): public and admin, one runner each.

The public app owns the store and the job runner, so it starts first and stops last; the
admin app only reads what the public one holds. Both get the same connection limits, and
each its own cap on connections open at once (`http.max_connections`,
`admin.max_connections`; `daemon.connections`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiohttp import web

from daemon.app import ADMIN_ACCESS
from daemon.appkeys import METRICS, SETTINGS
from daemon.connections import CappedTCPSite
from daemon.logging import AccessLogger, UndescribedAccessLogger, get_logger
from daemon.settings import Settings

log = get_logger("tier2gate.listeners")

LINGERING_S = 1.0


def runner_options(settings: Settings, *, access_log: bool) -> dict[str, Any]:
    """`web.AppRunner` keyword arguments for either listener; `access_log`: `http.access`
    JSON lines as `log.access` says (`logging.AccessLogger`: every request;
    `UndescribedAccessLogger`: all but the deliveries that have their own line).

    `keepalive_timeout`: aiohttp arms this timer when a connection opens and again after each
    answer, and does not extend it while a request head trickles in, so it bounds both an
    idle connection and a slow head (aiohttp PR #13681, "Close idle connections"; before it,
    a connection that never sent a request stayed open). Its default, 75 s in `run_app`, let
    an idle connection hold a socket for more than a minute. Body reads have their own
    deadline (`daemon.ingress.limits`).

    `lingering_time`: after answering a request whose body was not read (413 by its
    announced length, 415, or a refused slow or greedy body), aiohttp reads and discards the
    rest for this long so that the client sees the answer rather than a reset. Its default,
    10 s, would let a refused client keep the connection that long; an honest client's
    remaining bytes arrive in milliseconds.
    """
    mode = settings.log.access if access_log else "off"
    return {
        **({"access_log": logging.getLogger("aiohttp.access"),
            "access_log_class": AccessLogger if mode == "all" else UndescribedAccessLogger}
           if mode != "off" else {"access_log": None}),
        "keepalive_timeout": settings.http.idle_timeout_s,
        "lingering_time": LINGERING_S,
        "shutdown_timeout": settings.http.shutdown_timeout_s,
    }


class Listeners:
    """Both apps on their sockets. Port 0 picks a free port; `public_url`/`admin_url` say
    which one was bound."""

    def __init__(self, public: web.Application, admin: web.Application, *,
                 access_log: bool = False, public_listener: bool = True) -> None:
        """`public_listener=False` (`serve --role worker`): the public app still starts (it
        owns the store and the job runner) but takes no connections; only the admin
        listener (probes, metrics) listens."""
        self.settings: Settings = public[SETTINGS]
        options = runner_options(self.settings, access_log=access_log)
        self._public = web.AppRunner(public, **options)
        self._admin = web.AppRunner(admin, **options)
        self._listen_public = public_listener
        self._started: list[web.AppRunner] = []
        self.sites: dict[str, CappedTCPSite] = {}

    async def start(self) -> None:
        """Open the store (public app startup) and listen on both; on failure, undo."""
        http, admin = self.settings.http, self.settings.admin
        metrics = self._public.app[METRICS]
        try:
            for name, runner, host, port, cap in (
                    ("public", self._public, http.host, http.port, http.max_connections),
                    ("admin", self._admin, admin.host, admin.port, admin.max_connections)):
                await runner.setup()
                self._started.append(runner)
                if runner is self._public and not self._listen_public:
                    continue
                site = CappedTCPSite(runner, host, port, max_connections=cap, listener=name,
                                     on_refused=metrics.connections_refused.labels(name).inc)
                metrics.connections_open.labels(name).set_function(site.cap.count)
                self.sites[name] = site
                await site.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Admin first: it reads the store the public app closes."""
        while self._started:
            await self._started.pop().cleanup()

    @property
    def public_url(self) -> str:
        """The public listener's address ("" when it does not listen: `--role worker`)."""
        return _url(self._public) if self._listen_public else ""

    @property
    def admin_url(self) -> str:
        return _url(self._admin)

    def admin_access(self) -> str:
        return self._admin.app[ADMIN_ACCESS].describe()


def _url(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(public: web.Application, admin: web.Application, *, role: str = "all"
                ) -> None:
    """Listen until SIGTERM or SIGINT, then stop accepting, finish requests, drain, close.
    `role` `worker`: no public listener (see `Listeners`)."""
    listeners = Listeners(public, admin, access_log=True, public_listener=role != "worker")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await listeners.start()
    try:
        log.info("serve.listening", role=role, public=listeners.public_url,
                 admin=listeners.admin_url, admin_access=listeners.admin_access())
        await stopping.wait()
    finally:
        await listeners.stop()

"""The two aiohttp applications: routes, middleware, and the background workers' lifetime.

The public app (vendors' webhooks and the probes) and the admin app (the read side) are
served on separate listeners (`daemon.listeners`), so nothing that shows escalations can be
reached through the address vendors post to.

Workers live in `cleanup_ctx`, so they start after the store is open and stop (draining their
jobs) before it closes; aiohttp stops accepting connections first on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

from aiohttp import web

from daemon import drill
from daemon.admin_auth import AdminAccess
from daemon.appkeys import (
    CALENDAR_PROBLEM,
    CONFIG_CHECKS,
    INTAKE,
    METRICS,
    POLICY,
    PREFLIGHT,
    READY_DETAILS,
    ROSTER,
    SETTINGS,
    STORE,
)
from daemon.domain.policy_file import PolicyError
from daemon.handbook import render_handbook
from daemon.ingress import desk_webhooks, health, slack, webhooks
from daemon.ingress.limits import BUDGET, ByteBudget, release_held_bytes
from daemon.jobs.attention import recovered_job, trouble_job
from daemon.jobs.ee import ROTATION_CHECK, rotation_check_job
from daemon.jobs.followthrough import CADENCE, RETRO_POLL, cadence_job, retro_poll_job
from daemon.jobs.registry import URGENT
from daemon.jobs.retention import PRUNE, prune_job
from daemon.logging import SecretScrubber, get_logger
from daemon.metrics import Metrics
from daemon.policy_source import load_policy
from daemon.preflight import PreflightMonitor
from daemon.reporting import dashboard, ee_board
from daemon.roster import RosterSource
from daemon.settings import Settings
from daemon.store import Store, StoreUnavailable
from daemon.watch import Watch
from daemon.workers.runner import Handler, IntakeGauge, JobRunner

log = get_logger("tier2gate.app")

RUNNER = web.AppKey("runner", JobRunner)
WATCH = web.AppKey("watch", Watch)
ADMIN_ACCESS = web.AppKey("admin_access", AdminAccess)


class ClientClosedRequest(web.HTTPClientError):
    """The client went away before its request was read (nginx's 499). Nobody receives this
    answer; it exists so the metrics and the access log do not call the client's abort a 5xx,
    and so aiohttp does not log it as an error with a traceback."""

    status_code = 499


@web.middleware
async def errors_as_answers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """HTTP errors leave the app as plain answers, not as raised exceptions (outermost).

    aiohttp keeps a raised `HTTPException` in a local of the frame that caught it, and that
    frame is in the exception's own traceback: a reference cycle holding the request, its
    handler and any unread body until the cyclic garbage collector runs. Under a flood of
    refused uploads that is memory held for nothing. Answered as a `web.Response`, the
    exception dies here and everything it held is freed at once.
    """
    try:
        return await handler(request)
    except web.HTTPException as exc:
        answer = web.Response(status=exc.status, reason=exc.reason, body=exc.body,
                              headers={k: v for k, v in exc.headers.items()
                                       if k.lower() != "content-length"})
        if exc.keep_alive is False:  # force_close(): the rest of the body stays unread
            answer.force_close()
        return answer


@web.middleware
async def count_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Count every answer by route and status, including the errors aiohttp raises for us."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except ConnectionResetError:
        # aiohttp fails the body read with this when the connection is lost mid-upload.
        status = ClientClosedRequest.status_code
        log.info("http.client_aborted", route=route)
        raise ClientClosedRequest() from None
    except asyncio.CancelledError:
        # With handler cancellation on (aiohttp's test server turns it on) a lost connection
        # cancels the handler instead; cancellation must propagate.
        status = ClientClosedRequest.status_code
        raise
    finally:
        request.app[METRICS].answered(route, status)


@web.middleware
async def store_outage_is_503(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The last line for a store outage a handler did not answer itself (the dashboard, the
    API): 503 with the kind, never a 500 with a traceback."""
    try:
        return await handler(request)
    except StoreUnavailable as exc:
        log.error("http.store_unavailable", kind=exc.kind.value, error=str(exc),
                  path=request.path)
        raise webhooks.store_unavailable(exc) from None


# Nothing here loads from elsewhere or may be framed; the dashboard's one inline style is
# the only exception to `default-src 'none'`. Sent on both listeners (the JSON cannot hurt).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # aiohttp would name itself and its version; a product name tells an attacker less.
    "Server": "tier2gate",
}


async def _security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    # Runs after aiohttp filled in its defaults, so its Server value is replaced here.
    response.headers.update(SECURITY_HEADERS)


def build_app(
    settings: Settings,
    store: Store,
    *,
    handlers: Mapping[str, Handler] | None = None,
    metrics: Metrics | None = None,
    owner: str | None = None,
    checks: Sequence[Callable[[], str]] = (),
    on_close: Sequence[Callable[[], Awaitable[None]]] = (),
    watch: Watch | None = None,
    preflight: PreflightMonitor | None = None,
    run_jobs: bool = True,
    roster: RosterSource | None = None,
) -> web.Application:
    """The public listener's app: the webhook endpoints and the probes, nothing to read.

    It owns the store and the job runner; `build_admin_app` shares them. `checks` return a
    problem ("" when fine) for `/readyz`; `on_close` release vendor clients after the
    workers stopped; `watch` looks at the clocks and the policy file while the workers run;
    `preflight` checks the vendors at start and periodically. `run_jobs=False` (`serve --role
    web`): no job runner in this process; other processes (`--role worker`) run the jobs it
    stores, so readiness does not ask about one. `roster`: the EE rotation the dashboard
    shows."""
    app = web.Application(
        client_max_size=settings.http.max_body_bytes,
        middlewares=[errors_as_answers, count_requests, store_outage_is_503,
                     release_held_bytes],
    )
    app[SETTINGS] = settings
    app[STORE] = store
    app[METRICS] = metrics or Metrics()
    app[CONFIG_CHECKS] = list(checks)
    app[READY_DETAILS] = []
    app[ROSTER] = roster or RosterSource(None)
    app[BUDGET] = ByteBudget(settings.http.max_buffered_bytes)
    app[INTAKE] = IntakeGauge()
    scrubber = SecretScrubber(settings.secrets())
    app[RUNNER] = JobRunner(
        store, handlers or {}, settings.jobs, app[METRICS], scrub=scrubber.scrub, owner=owner,
        urgent=URGENT, on_trouble=trouble_job, on_recovered=recovered_job, intake=app[INTAKE],
    )
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_post("/webhooks/pagerduty", webhooks.pagerduty_webhook)
    app.router.add_post("/webhooks/incident-io", webhooks.incident_io_webhook)
    app.router.add_post("/webhooks/zendesk", desk_webhooks.zendesk_webhook)
    app.router.add_post("/webhooks/jira", desk_webhooks.jira_webhook)
    app.router.add_post("/slack/interactions", slack.interactions)
    app.router.add_post("/slack/commands", slack.commands)
    app.on_response_prepare.append(_security_headers)
    app.cleanup_ctx.append(_store_lifetime)
    if run_jobs:
        app.cleanup_ctx.append(_runner_lifetime)
    if watch is not None:
        app[WATCH] = watch
        app[READY_DETAILS].append(watch.detail)
        app.cleanup_ctx.append(_watch_lifetime)
    if preflight is not None:
        app[PREFLIGHT] = preflight
        app[READY_DETAILS].append(preflight.detail)
        app.cleanup_ctx.append(_preflight_lifetime)

    async def close_clients(_app: web.Application) -> None:
        for close in on_close:
            await close()

    app.on_cleanup.append(close_clients)
    return app


def build_admin_app(public: web.Application) -> web.Application:
    """The admin listener's app: dashboard, `/api/escalations`, `/metrics` and readiness with
    its reasons, over the public app's store, metrics and checks. Start it after the public
    app (which opens the store) and stop it before."""
    settings = public[SETTINGS]
    access = AdminAccess.from_settings(settings.admin)
    app = web.Application(
        middlewares=[errors_as_answers, count_requests, access.middleware(),
                     store_outage_is_503])
    app[SETTINGS] = settings
    app[STORE] = public[STORE]
    app[METRICS] = public[METRICS]
    app[CONFIG_CHECKS] = public[CONFIG_CHECKS]  # the same list: the runner's check joins later
    app[READY_DETAILS] = public[READY_DETAILS]
    app[ADMIN_ACCESS] = access
    if PREFLIGHT in public:
        app[PREFLIGHT] = public[PREFLIGHT]
    app[ROSTER] = public[ROSTER]
    if WATCH in public:
        app[POLICY] = public[WATCH].policy
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz_detailed)
    app.router.add_get("/metrics", health.metrics)
    if WATCH in public:
        events = public[WATCH].events
        if events is not None:
            app[CALENDAR_PROBLEM] = lambda: events.problem
    dashboard.add_routes(app)
    ee_board.add_routes(app)
    drill.add_routes(app)
    app.router.add_get("/handbook", handbook_page)
    app.on_response_prepare.append(_security_headers)
    return app


async def handbook_page(request: web.Request) -> web.Response:
    """`GET /handbook`: the policy in force in words (Markdown, `tier2gate handbook`)."""
    settings = request.app[SETTINGS]
    source = request.app.get(POLICY)
    try:
        policy = source.current() if source is not None else await asyncio.to_thread(
            load_policy, settings.resolved_policy_file())
    except PolicyError as exc:
        return web.Response(status=503, text=f"the policy cannot be read:\n{exc}\n")
    text = await asyncio.to_thread(render_handbook, policy, settings)
    return web.Response(text=text, content_type="text/markdown", charset="utf-8")


async def _store_lifetime(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    started = time.monotonic()
    await store.open()
    if store.single_node:
        # Nobody else may use this database (the backend holds an exclusive lock), so any job
        # still marked running was interrupted by our own crash: run it again now.
        orphans = await store.release_orphans()
        if orphans:
            log.warning("jobs.recovered_after_crash", count=orphans)
    log.info("store.opened", dialect=store.backend.dialect,
             elapsed_ms=round((time.monotonic() - started) * 1000, 1))
    yield
    await store.close()
    log.info("store.closed")


async def _runner_lifetime(app: web.Application) -> AsyncIterator[None]:
    runner = app[RUNNER]
    if PRUNE in runner.handlers:
        # Retention starts with the daemon; the job keeps itself going from then on.
        store = app[STORE]
        await store.enqueue(prune_job(app[SETTINGS].retention, store.clock.now()))
    if RETRO_POLL in runner.handlers and CADENCE in runner.handlers:
        # Follow-through too: each job schedules its next period.
        store, followthrough = app[STORE], app[SETTINGS].followthrough
        now_s = store.clock.now()
        await store.enqueue(retro_poll_job(followthrough, now_s),
                            cadence_job(followthrough, now_s))
    if ROTATION_CHECK in runner.handlers and app[SETTINGS].ee.roster_file is not None:
        # Rotation handoffs start with the daemon; the check keeps itself going from then on.
        store = app[STORE]
        await store.enqueue(rotation_check_job(app[SETTINGS].ee, store.clock.now()))
    task = asyncio.create_task(runner.run(), name="job-runner")
    app[CONFIG_CHECKS].append(lambda: "the job runner stopped" if task.done() else "")
    yield
    runner.stop()
    await task


async def _watch_lifetime(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[WATCH].run(), name="watch")

    def ended(done: asyncio.Task[None]) -> None:
        if not done.cancelled():  # a bug: say so loudly; readiness turns red below
            log.error("watch.stopped", exc_info=done.exception())

    task.add_done_callback(ended)
    app[CONFIG_CHECKS].append(
        lambda: "the clock and policy watch stopped" if task.done() else "")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _preflight_lifetime(app: web.Application) -> AsyncIterator[None]:
    # In the background: a slow vendor must not delay taking webhooks.
    task = asyncio.create_task(app[PREFLIGHT].run(), name="preflight")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

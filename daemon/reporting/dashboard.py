"""`GET /` (an HTML dashboard) and `GET /api/escalations` (the same data as JSON).

Server-rendered from the store on every request: no build step, no JavaScript, nothing to keep
in sync. The page and the JSON show the report of `build_report`, so they agree with
`tier2gate report`. Only escalation data is rendered, never settings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from daemon.appkeys import PREFLIGHT, STORE
from daemon.clock import iso, to_datetime
from daemon.domain.gate import Phase
from daemon.domain.models import Person
from daemon.jobs.escalations import loaded
from daemon.reporting.report import Report, TooManyEscalations, build_report, fetch, parse_since
from daemon.reporting.svg import bar_chart
from daemon.store import EscalationRow, JobState, StoreUnavailable, TimelineEntry

DEMO_ACTIONS_KEY = web.AppKey("demo_actions", bool)
DEFAULT_SINCE = "30d"
SINCE_CHOICES = ("24h", "7d", "30d", "90d")
CLOSED_PHASES = frozenset({Phase.CLOSED, Phase.IGNORED, Phase.RFH, Phase.DECLINED})
_CLOCK_SKEW = timedelta(minutes=1)

_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _details_text(details: dict[str, Any]) -> str:
    """Timeline details on one line: strings as they are, anything else as compact JSON."""
    return ", ".join(
        f"{key}: {value if isinstance(value, str) else json.dumps(value, sort_keys=True)}"
        for key, value in details.items()
    )


def _age(minutes: float) -> str:
    """Coarse on purpose: "2 d 4 h" reads faster than 3120 minutes on an incident page."""
    whole = int(minutes)
    days, hours, mins = whole // 1440, whole % 1440 // 60, whole % 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def _is_web_url(url: str) -> bool:
    """Links come from vendor payloads: a `javascript:` URL would run in the viewer's browser."""
    return url.lower().startswith(("https://", "http://"))


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)
_ENV.filters.update(
    details_text=_details_text,
    words=lambda name: str(name).replace("_", " "),
    age=_age,
    percent=lambda share: "-" if share is None else f"{share * 100:.1f}%",
    minutes=lambda value: "-" if value is None else f"{value:.1f}",
    when=lambda moment: moment.strftime("%Y-%m-%d %H:%M UTC"),
)
_ENV.tests["web_url"] = _is_web_url


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TimelineView(_View):
    at: str
    event: str
    actor: str
    details: dict[str, Any]


class ProblemView(_View):
    """Why an escalation needs a person: what failed, the vendor's reason, since when."""

    effect: str
    reason: str
    final: bool  # False: still being retried
    at: str


class StrandedJobView(_View):
    """A dead-lettered job that belongs to no escalation: a webhook delivery or click that
    could not be processed may have been an emergency nobody was asked about."""

    id: int
    kind: str
    error: str
    at: str


class EscalationView(_View):
    """One escalation as people and scripts read it; `decided` is the verdict, `approver` the
    chat user who gave it (None for a timeout or while undecided), `declared_by` who declared
    it as the source named them (None when the source does not say)."""

    id: str
    source: str
    external_id: str
    reference: str
    title: str
    customer: str
    severity: str
    phase: str
    outcome: str | None
    criteria: list[str]
    approver: str | None
    decided: str | None
    declared_by: str | None = None
    self_approved: bool = False
    age_minutes: float
    opened_at: str
    links: dict[str, str]
    timeline: list[TimelineView]
    problems: list[ProblemView]

    @property
    def open(self) -> bool:
        return self.phase not in CLOSED_PHASES


def escalation_view(row: EscalationRow, timeline: Sequence[TimelineEntry], now: float
                    ) -> EscalationView:
    current = loaded(row)
    gate, escalation = current.gate, current.escalation
    criteria = ([c.value for c, held in gate.decision.facts.criteria.items() if held]
                if gate.decision else [])
    return EscalationView(
        id=row.id, source=row.source, external_id=row.external_id,
        reference=escalation.reference, title=escalation.title, customer=escalation.customer,
        severity=escalation.severity, phase=row.state, outcome=row.outcome, criteria=criteria,
        approver=(gate.decided.by or None) if gate.decided else None,
        decided=gate.decided.verdict.value if gate.decided else None,
        declared_by=_who(escalation.declared_by),
        self_approved=bool(gate.decided and gate.decided.self_approved),
        age_minutes=round(max(0.0, now - row.opened_at) / 60.0, 1),
        opened_at=iso(row.opened_at), links=dict(escalation.links),
        timeline=[TimelineView(at=iso(entry.at), event=entry.event, actor=entry.actor,
                               details=entry.details) for entry in timeline],
        problems=[ProblemView(effect=p.effect, reason=p.reason, final=p.final,
                              at=iso(p.at.timestamp())) for p in gate.problems],
    )


def _who(person: Person | None) -> str | None:
    """"Name (U123)": the name people know, and the chat id an approver is compared with."""
    if person is None:
        return None
    if person.chat_id and person.label != person.chat_id:
        return f"{person.label} ({person.chat_id})"
    return person.label


async def _load(request: web.Request) -> tuple[
        str, Report, list[EscalationView], list[EscalationView], list[StrandedJobView]]:
    """The period asked for, its report, its escalations, every escalation that needs a
    person whenever it opened, and the dead jobs of no escalation; HTTP errors name the
    problem."""
    since_text = request.query.get("since", DEFAULT_SINCE)
    try:
        period = parse_since(since_text)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    store = request.app[STORE]
    now = store.clock.now()
    # A vendor clock a little ahead of ours must not hide an escalation opened just now.
    until = to_datetime(now) + _CLOCK_SKEW
    since = until - period
    try:
        rows, timelines = await fetch(store, since, until)
        stuck = await store.needing_attention()
        for row in stuck:
            if row.id not in timelines:
                timelines[row.id] = await store.timeline(row.id)
        stranded = [StrandedJobView(id=job.id, kind=job.kind, error=job.last_error,
                                    at=iso(job.updated_at))
                    for job in await store.list_jobs(JobState.DEAD, 500)
                    if job.escalation_id is None]
    except TooManyEscalations as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    except StoreUnavailable as exc:
        raise web.HTTPServiceUnavailable(text=f"the store is unavailable: {exc}") from None
    report = build_report(rows, timelines, since=since, until=until)
    views = [escalation_view(row, timelines[row.id], now) for row in rows]
    attention = [escalation_view(row, timelines[row.id], now) for row in stuck]
    return since_text, report, views, attention, stranded


async def index(request: web.Request) -> web.Response:
    since_text, report, views, attention, stranded = await _load(request)
    emergencies, everyone = report.emergencies_by_day, report.escalations_by_day
    html = _ENV.get_template("dashboard.html.j2").render(
        since=since_text,
        since_choices=SINCE_CHOICES,
        report=report,
        needs_attention=attention,
        stranded_jobs=stranded,
        open_escalations=[view for view in views if view.open],
        other_escalations=[view for view in views if not view.open],
        funnel_svg=bar_chart([(step.step.replace("_", " "), step.count)
                              for step in report.funnel], "Emergency funnel"),
        days_svg=bar_chart([("emergencies, weekend", emergencies.weekend),
                            ("emergencies, weekday", emergencies.weekday),
                            ("all, weekend", everyone.weekend),
                            ("all, weekday", everyone.weekday)],
                           "Weekend and weekday escalations", color="#b6763b"),
        demo_actions=request.app.get(DEMO_ACTIONS_KEY, False),
        awaiting=Phase.AWAITING_APPROVAL.value,
        preflight_failing=request.app[PREFLIGHT].failing if PREFLIGHT in request.app else [],
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def api_escalations(request: web.Request) -> web.Response:
    _since, report, views, attention, stranded = await _load(request)
    return web.json_response({
        "needs_attention": [view.model_dump(mode="json") for view in attention],
        "stranded_jobs": [job.model_dump(mode="json") for job in stranded],
        "report": report.model_dump(mode="json"),
        "escalations": [view.model_dump(mode="json") for view in views],
    })


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/api/escalations", api_escalations)

"""`GET /` (an HTML dashboard) and `GET /api/escalations` (the same data as JSON).

Server-rendered from the store on every request: no build step, no JavaScript, nothing to keep
in sync. The page and the JSON show the report of `load_report`, so they agree with
`tier2gate report`. Only escalation data is rendered, never settings.

Made for the SMOC's phone: what waits for a decision or needs a person comes first, then the
figures, then the escalations a page at a time (keyset cursor, newest first), narrowed in SQL
by period, source, phase, outcome and Tier 1 team. Each request reads one page, not the whole
store.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from daemon.appkeys import CALENDAR_PROBLEM, POLICY, PREFLIGHT, SETTINGS, STORE
from daemon.clock import iso, to_datetime
from daemon.domain.calendar import BusinessHours
from daemon.domain.gate import Phase
from daemon.domain.models import Person, Source
from daemon.domain.policy import Outcome
from daemon.domain.teams import TEAM_NAME
from daemon.reporting.report import Report, load_report, parse_since
from daemon.reporting.svg import bar_chart
from daemon.store import JobState, StoreUnavailable, TimelineEntry
from daemon.store.mapping import Loaded
from daemon.store.reads import NO_OUTCOME, Cursor, EscalationFilter

DEMO_ACTIONS_KEY = web.AppKey("demo_actions", bool)
DEFAULT_SINCE = "30d"
SINCE_CHOICES = ("24h", "7d", "30d", "90d")
PAGE_SIZE = 25  # escalations per dashboard page: a phone scrolls through them, not 3,000
API_PAGE_SIZE, API_MAX_PAGE_SIZE = 50, 200
WAITING_LIMIT = 50  # escalations awaiting a decision shown above everything; more is an outage
REFRESH_S = 60  # the page reloads itself: long enough to type a decline reason first
SOURCES = tuple(source.value for source in Source)
PHASES = tuple(phase.value for phase in Phase)
OUTCOMES = (*(outcome.value for outcome in Outcome), NO_OUTCOME)
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
    actor_name: str  # the actor's name when this escalation knows it, else as recorded
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
    team: str  # the Tier 1 team (`domain.teams`; "default" without configured teams)
    external_id: str
    reference: str
    title: str
    customer: str
    severity: str
    phase: str
    outcome: str | None
    criteria: list[str]
    approver: str | None
    approver_name: str | None  # the approver's name when known, else the chat id
    decided: str | None
    declared_by: str | None = None
    declared_by_name: str | None = None  # what people read; `declared_by` adds the chat id
    self_approved: bool = False
    age_minutes: float
    opened_at: str
    links: dict[str, str]
    timeline: list[TimelineView]
    problems: list[ProblemView]
    ee_owner: str | None = None  # chat user id of the Escalation Engineer who owns it (DRI)
    ee_owner_name: str | None = None
    ee_outcome: str | None = None  # resolved / engineering once the EE said so


def escalation_view(current: Loaded, timeline: Sequence[TimelineEntry], now: float
                    ) -> EscalationView:
    row = current.row
    gate, escalation = current.gate, current.escalation
    criteria = ([c.value for c, held in gate.decision.facts.criteria.items() if held]
                if gate.decision else [])
    names = _names(escalation.declared_by, timeline)
    approver = (gate.decided.by or None) if gate.decided else None
    links = dict(escalation.links)
    # What a person taps next from the phone: the page in PagerDuty and the retro issue.
    if gate.page is not None and gate.page.url:
        links["PagerDuty incident"] = gate.page.url
    if gate.retro_url:
        links["retro issue"] = gate.retro_url
    return EscalationView(
        id=row.id, source=row.source, team=row.team, external_id=row.external_id,
        reference=escalation.reference, title=escalation.title, customer=escalation.customer,
        severity=escalation.severity, phase=row.state, outcome=row.outcome, criteria=criteria,
        approver=approver, approver_name=names.get(approver, approver) if approver else None,
        decided=gate.decided.verdict.value if gate.decided else None,
        declared_by=_who(escalation.declared_by),
        declared_by_name=escalation.declared_by.label if escalation.declared_by else None,
        self_approved=bool(gate.decided and gate.decided.self_approved),
        age_minutes=round(max(0.0, now - row.opened_at) / 60.0, 1),
        opened_at=iso(row.opened_at), links=links,
        timeline=[TimelineView(at=iso(entry.at), event=entry.event.value, actor=entry.actor,
                               actor_name=names.get(entry.actor, entry.actor),
                               details=entry.details) for entry in timeline],
        problems=[ProblemView(effect=p.effect, reason=p.reason, final=p.final,
                              at=iso(p.at.timestamp())) for p in gate.problems],
        ee_owner=gate.ee.owner or None if gate.ee else None,
        ee_owner_name=(gate.ee.owner_name or gate.ee.owner) or None if gate.ee else None,
        ee_outcome=gate.ee.outcome.value if gate.ee and gate.ee.outcome else None,
    )


def _who(person: Person | None) -> str | None:
    """"Name (U123)": the name people know, and the chat id an approver is compared with."""
    if person is None:
        return None
    if person.chat_id and person.label != person.chat_id:
        return f"{person.label} ({person.chat_id})"
    return person.label


def _names(declared_by: Person | None, timeline: Sequence[TimelineEntry]) -> dict[str, str]:
    """Chat user id -> name, from what this escalation knows of people: its declarer and the
    people its timeline names (e.g. `received` and `self_approved` carry `declared_by`). An
    approver tier2gate never learned the name of stays an id."""
    people = [declared_by] if declared_by is not None else []
    for entry in timeline:
        said = entry.details.get("declared_by")
        if isinstance(said, dict):
            try:
                people.append(Person.model_validate(said))
            except ValidationError:
                continue  # an old or odd entry names nobody we can show
    return {person.chat_id: person.label for person in people
            if person.chat_id and person.label != person.chat_id}


@dataclass(frozen=True)
class Query:
    """What the reader asked for: a period, filters and where in the list."""

    since_text: str
    since: datetime
    until: datetime
    source: str | None
    state: str | None
    outcome: str | None
    cursor: Cursor | None
    team: str | None = None

    def filter(self) -> EscalationFilter:
        return EscalationFilter(since=self.since.timestamp(), until=self.until.timestamp(),
                                source=self.source, state=self.state, outcome=self.outcome,
                                team=self.team)

    def href(self, path: str, cursor: Cursor | None) -> str:
        """A link to the same view, on the page after `cursor`."""
        params = {"since": self.since_text, "source": self.source, "state": self.state,
                  "outcome": self.outcome, "team": self.team,
                  "cursor": encode_cursor(cursor) if cursor else None}
        return f"{path}?{urlencode({k: v for k, v in params.items() if v is not None})}"


def encode_cursor(cursor: Cursor) -> str:
    """Opaque to readers: the position only, so a link cannot carry anything else."""
    raw = json.dumps([cursor[0], cursor[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """`encode_cursor`'s position back; anything it cannot have made (a number no float holds,
    NaN, a flag, an id with a NUL or a lone surrogate, which no database binds) is a 400."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        opened_at, escalation_id = json.loads(raw)
        if (isinstance(opened_at, int | float) and not isinstance(opened_at, bool)
                and math.isfinite(opened_at) and isinstance(escalation_id, str)
                and escalation_id.isprintable()):
            return float(opened_at), escalation_id
    except (ValueError, TypeError, OverflowError):
        pass
    raise web.HTTPBadRequest(text="cursor is not one this server gave out; start again without it")


def _choice(request: web.Request, name: str, allowed: Sequence[str]) -> str | None:
    value = request.query.get(name) or None
    if value is not None and value not in allowed:
        raise web.HTTPBadRequest(text=f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _team(request: web.Request) -> str | None:
    """The `team` filter: a team name (`domain.teams.TEAM_NAME`); one no escalation has
    simply matches nothing."""
    value = request.query.get("team") or None
    if value is not None and not re.fullmatch(TEAM_NAME, value):
        raise web.HTTPBadRequest(text="team must be a team name: lower-case letters, digits, "
                                      "- and _, at most 40 characters")
    return value


def parse_query(request: web.Request, now: float) -> Query:
    """The period, filters and cursor of a request; a 400 names what is wrong."""
    since_text = request.query.get("since", DEFAULT_SINCE)
    try:
        period = parse_since(since_text)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    # A vendor clock a little ahead of ours must not hide an escalation opened just now.
    until = to_datetime(now) + _CLOCK_SKEW
    cursor = request.query.get("cursor")
    return Query(since_text=since_text, since=until - period, until=until,
                 source=_choice(request, "source", SOURCES),
                 state=_choice(request, "state", PHASES),
                 outcome=_choice(request, "outcome", OUTCOMES),
                 cursor=decode_cursor(cursor) if cursor else None, team=_team(request))


@dataclass(frozen=True)
class Board:
    """Everything one request shows: what needs a person first, then the figures and a page."""

    query: Query
    report: Report | None  # None on later pages: the figures do not change with the page
    page: list[EscalationView]
    next_cursor: Cursor | None
    waiting: list[EscalationView]
    attention: list[EscalationView]
    stranded: list[StrandedJobView]


def business_hours(app: web.Application) -> BusinessHours | None:
    """The policy's business calendar, when the daemon watches a policy (not in bare tests)."""
    return app[POLICY].current().business_hours if POLICY in app else None


async def _load(request: web.Request, limit: int, *, with_report: bool) -> Board:
    """One page of escalations with their timelines, every escalation waiting for a decision
    or needing a person whenever it opened, the dead jobs of no escalation and (`with_report`)
    the period's figures, aggregated by the store. HTTP errors name the problem."""
    store = request.app[STORE]
    now = store.clock.now()
    query = parse_query(request, now)
    try:
        page, next_cursor = await store.load_page(query.filter(), query.cursor, limit)
        waiting, _ = await store.load_page(
            EscalationFilter(since=0.0, until=query.until.timestamp(),
                             state=Phase.AWAITING_APPROVAL.value), None, WAITING_LIMIT)
        stuck = await store.needing_attention()
        shown = {current.row.id: current for current in (*waiting, *stuck, *page)}
        timelines = await store.timelines(list(shown))
        stranded = [StrandedJobView(id=job.id, kind=job.kind, error=job.last_error,
                                    at=iso(job.updated_at))
                    for job in await store.list_jobs(JobState.DEAD, 500)
                    if job.escalation_id is None]
        report = (await load_report(store, query.since, query.until, business_hours(request.app),
                                    settings=request.app[SETTINGS])
                  if with_report else None)
    except StoreUnavailable as exc:
        raise web.HTTPServiceUnavailable(text=f"the store is unavailable: {exc}") from None
    views = {escalation_id: escalation_view(current, timelines[escalation_id], now)
             for escalation_id, current in shown.items()}
    return Board(query=query, report=report, page=[views[c.row.id] for c in page],
                 next_cursor=next_cursor, waiting=[views[c.row.id] for c in waiting],
                 attention=[views[c.row.id] for c in stuck], stranded=stranded)


async def index(request: web.Request) -> web.Response:
    board = await _load(request, PAGE_SIZE, with_report=True)
    report, query = board.report, board.query
    assert report is not None  # asked for above
    emergencies, everyone = report.emergencies_by_day, report.escalations_by_day
    html = _ENV.get_template("dashboard.html.j2").render(
        since=query.since_text,
        since_choices=SINCE_CHOICES,
        query=query,
        filters={"state": PHASES, "outcome": OUTCOMES, "source": SOURCES,
                 "team": _team_choices(report, query)},
        report=report,
        needs_attention=board.attention,
        stranded_jobs=board.stranded,
        waiting=board.waiting,
        shown_above={view.id for view in board.waiting},
        escalations=board.page,
        newest_href=query.href("/", None) if query.cursor else None,
        older_href=query.href("/", board.next_cursor) if board.next_cursor else None,
        refresh_s=REFRESH_S,
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
        calendar_problem=request.app[CALENDAR_PROBLEM]() if CALENDAR_PROBLEM in request.app
        else "",
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def _team_choices(report: Report, query: Query) -> tuple[str, ...]:
    """The teams the period has escalations of, and the one asked for (if it has none)."""
    return tuple(sorted({*report.teams, *([query.team] if query.team else [])}))


async def api_escalations(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", API_PAGE_SIZE))
    except ValueError:
        limit = 0
    if not 1 <= limit <= API_MAX_PAGE_SIZE:
        raise web.HTTPBadRequest(text=f"limit must be a whole number from 1 to {API_MAX_PAGE_SIZE}")
    # An empty cursor reads as none (`parse_query`): that is the first page, with its figures.
    board = await _load(request, limit, with_report=not request.query.get("cursor"))
    return web.json_response({
        "needs_attention": [view.model_dump(mode="json") for view in board.attention],
        "awaiting_decision": [view.model_dump(mode="json") for view in board.waiting],
        "stranded_jobs": [job.model_dump(mode="json") for job in board.stranded],
        "report": board.report.model_dump(mode="json") if board.report else None,
        "escalations": [view.model_dump(mode="json") for view in board.page],
        "next_cursor": encode_cursor(board.next_cursor) if board.next_cursor else None,
    })


def template(name: str) -> jinja2.Template:
    """A page template of the dashboard's environment (autoescaped HTML, its filters)."""
    return _ENV.get_template(name)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/api/escalations", api_escalations)

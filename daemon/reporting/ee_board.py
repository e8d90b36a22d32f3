"""The dashboard's "Escalation Engineers" page (`/ee`) and its JSON (`/api/ee`).

Who is on rotation now, the open escalations each EE owns with their state, last update and
links (the running document a rotation hands over: an owner no longer on the rotation is
marked outgoing), and the EE layer's figures for the period. Its cost follows what is open
and the window's EE-offered escalations, not the store's size.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from daemon.appkeys import ROSTER, STORE
from daemon.clock import iso, to_datetime
from daemon.reporting.dashboard import template
from daemon.reporting.ee import EELayer, load_ee_layer
from daemon.reporting.report import parse_since
from daemon.sources.slack_ids import slack_permalink
from daemon.store import StoreUnavailable

DEFAULT_SINCE = "30d"


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OwnedView(_View):
    id: str
    reference: str
    title: str
    phase: str
    last_update: str
    links: dict[str, str]


class OwnerView(_View):
    ee: str  # chat user id
    name: str
    on_rotation: bool  # False: outgoing, their escalations wait for an incoming EE
    escalations: list[OwnedView]


class EEBoard(_View):
    rotation: str | None
    on_rotation: list[dict[str, str]]  # {"ee": id, "name": name}
    owners: list[OwnerView]
    figures: EELayer
    since: str


async def _board(request: web.Request) -> EEBoard:
    store = request.app[STORE]
    now = to_datetime(store.clock.now())
    since_text = request.query.get("since", DEFAULT_SINCE)
    try:
        period: timedelta = parse_since(since_text)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"since: {exc}") from None
    roster = request.app[ROSTER].current()
    rotation = roster.at(now)
    try:
        per_owner = await store.ee_open_per_owner()
        owned = await store.load_owned_by(sorted(per_owner))
        figures = await load_ee_layer(store, now - period, now)
    except StoreUnavailable as exc:
        raise web.HTTPServiceUnavailable(text=f"the store is unavailable: {exc}") from None
    grouped: dict[str, list[OwnedView]] = {}
    names: dict[str, str] = {}
    for owner, current in owned:
        row = current.row
        ee = current.gate.ee
        links = dict(current.escalation.links)
        if ee is not None and ee.message_id:
            links["EE offer"] = slack_permalink(ee.channel, ee.message_id)
            names[owner] = ee.owner_name or owner
        grouped.setdefault(owner, []).append(OwnedView(
            id=row.id, reference=current.escalation.reference, title=current.escalation.title,
            phase=row.state, last_update=iso(row.updated_at), links=links))
    on_rotation = rotation.user_ids if rotation else ()
    return EEBoard(
        rotation=rotation.id if rotation else None,
        on_rotation=[{"ee": e.slack_user_id, "name": e.name}
                     for e in (rotation.engineers if rotation else ())],
        owners=[OwnerView(ee=owner, name=names.get(owner, owner),
                          on_rotation=owner in on_rotation, escalations=items)
                for owner, items in sorted(grouped.items(),
                                           key=lambda item: (item[0] in on_rotation, item[0]))],
        figures=figures, since=since_text)


async def ee_page(request: web.Request) -> web.Response:
    board = await _board(request)
    context: dict[str, Any] = {"board": board}
    return web.Response(text=template("ee.html.j2").render(**context),
                        content_type="text/html", charset="utf-8")


async def api_ee(request: web.Request) -> web.Response:
    return web.json_response((await _board(request)).model_dump(mode="json"))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ee", ee_page)
    app.router.add_get("/api/ee", api_ee)

"""The dashboard (`GET /`) and its JSON twin (`GET /api/escalations`) over escalations that
arrived as signed incident.io webhooks through the whole in-process daemon."""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from daemon.appkeys import SETTINGS, STORE
from daemon.reporting.dashboard import DEMO_ACTIONS_KEY, add_routes
from tests.harness import AppClient, Harness, payload, running

CREATED: dict[str, Any] = json.loads(
    payload("incident_io/openapi_example_public_incident_created_v2.json"))
EVIL_TITLE = "<script>alert('pwned')</script> checkout down"


def incident(incident_id: str, name: str, severity: str, created: datetime,
             fields: dict[str, str] | None = None, **overrides: str) -> dict[str, Any]:
    """The published example, made ours: id, title, severity, custom fields, timestamps."""
    body = copy.deepcopy(CREATED)
    inner = body["public_incident.incident_created_v2"]
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    inner.update(id=incident_id, name=name, reference=f"INC-{incident_id[-3:]}",
                 created_at=stamp, updated_at=stamp, **overrides)
    inner["severity"]["name"] = severity
    inner["custom_field_entries"] = [
        {"custom_field": {"id": f"F{n}", "name": key, "field_type": "single_select"},
         "values": [{"value_option": {"id": f"O{n}", "value": value}}]}
        for n, (key, value) in enumerate((fields or {}).items())
    ]
    return body


@dataclass
class Site:
    harness: Harness
    client: AppClient
    emergency_id: str
    rfh_id: str


async def _demo_site(harness: Harness) -> AppClient:
    """The dashboard with demo actions on the harness's store: the key must be set before an
    app starts, and the harness app is already running."""
    app = web.Application()
    app[STORE] = harness.store
    app[SETTINGS] = harness.settings
    app[DEMO_ACTIONS_KEY] = True
    add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture(params=[False], ids=["plain"])
async def site(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    async with running(tmp_path) as harness:
        now = datetime.fromtimestamp(harness.clock.now(), UTC)
        for body in (
            incident("01EMERGENCY0001", EVIL_TITLE, "Critical", now - timedelta(minutes=10),
                     {"Production unstable": "Yes"}),
            incident("01RFH000000002", "Slow reports", "Minor", now - timedelta(minutes=5),
                     permalink="javascript:alert(document.cookie)"),
            CREATED,  # opened in 2021: outside any recent period
        ):
            assert (await harness.incident_io(body)).status == 202
        await harness.settle()
        by_external = {row.external_id: row for row in await harness.escalations()}
        emergency, rfh = by_external["01EMERGENCY0001"], by_external["01RFH000000002"]
        assert (emergency.state, rfh.state) == ("awaiting_approval", "rfh")
        if not request.param:  # the daemon's own admin app serves the dashboard
            yield Site(harness, harness.admin, emergency.id, rfh.id)
            return
        client = await _demo_site(harness)
        try:
            yield Site(harness, client, emergency.id, rfh.id)
        finally:
            await client.close()


def section(html: str, section_id: str) -> str:
    found = re.search(rf'<section id="{section_id}">(.*?)</section>', html, re.S)
    assert found is not None, f"no section {section_id}"
    return found.group(1)


def article(html: str, escalation_id: str) -> str:
    found = re.search(rf'<article class="esc" id="{escalation_id}"(.*?)</article>', html, re.S)
    assert found is not None, f"no element with id {escalation_id}"
    return found.group(0)


async def test_the_page_shows_escalations_funnel_and_goal(site: Site) -> None:
    response = await site.client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    emergency = article(html, site.emergency_id)
    assert 'data-phase="awaiting_approval"' in emergency
    assert "production unstable" in emergency
    assert "<details>" in emergency and ">received</strong>" in emergency
    assert 'data-phase="rfh"' in article(html, site.rfh_id)
    assert "Slow reports" in html
    waiting = re.search(r'<section id="waiting" class="waiting">(.*?)</section>', html, re.S)
    assert waiting is not None and site.emergency_id in waiting.group(1)
    assert site.rfh_id not in waiting.group(1)
    # Waiting first: above the figures, and in the list only as a pointer to it.
    assert html.index('id="waiting"') < html.index('id="summary"')
    assert html.count(f'<article class="esc" id="{site.emergency_id}"') == 1
    listed = section(html, "escalations")
    assert f'href="#{site.emergency_id}"' in listed and site.rfh_id in listed
    assert '<meta http-equiv="refresh" content="60">' in html
    assert "Our database is sad" not in html  # opened in 2021
    funnel = section(html, "funnel")
    assert '<svg class="chart"' in funnel
    assert ">emergency</text>" in funnel and ">approval requested</text>" in funnel
    engineering = re.search(r'<div class="card good" id="engineering">(.*?)</div>', html, re.S)
    assert engineering is not None  # nothing paged: 0% of 2 meets the 10% goal
    assert "0 of 2 paged" in engineering.group(1)
    assert "/demo/click" not in html


async def test_a_title_is_escaped_not_executed(site: Site) -> None:
    html = await (await site.client.get("/")).text()
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; checkout down" in html
    assert "<script>" not in html


async def test_only_web_links_are_rendered(site: Site) -> None:
    rfh = article(await (await site.client.get("/")).text(), site.rfh_id)
    assert '<a href="https://zoom.us/foo" rel="noopener noreferrer">call</a>' in rfh
    assert "javascript:" not in rfh


async def test_the_api_lists_escalations_with_their_timelines(site: Site) -> None:
    response = await site.client.get("/api/escalations", params={"since": "1h"})
    assert response.status == 200
    data = await response.json()
    assert (data["report"]["escalations"], data["report"]["by_outcome"]["emergency"]) == (2, 1)
    assert data["report"]["funnel"][1] == {"step": "emergency", "count": 1}
    views = {view["id"]: view for view in data["escalations"]}
    assert set(views) == {site.emergency_id, site.rfh_id}
    emergency = views[site.emergency_id]
    assert {key: emergency[key] for key in ("source", "external_id", "title", "severity",
                                            "phase", "outcome", "criteria", "approver",
                                            "approver_name", "decided", "age_minutes")} == {
        "source": "incident_io", "external_id": "01EMERGENCY0001", "title": EVIL_TITLE,
        "severity": "Critical", "phase": "awaiting_approval", "outcome": "emergency",
        "criteria": ["production_unstable"], "approver": None, "approver_name": None,
        "decided": None, "age_minutes": 10.0}
    assert [view["id"] for view in data["awaiting_decision"]] == [site.emergency_id]
    assert data["next_cursor"] is None
    stored = await site.harness.store.timeline(site.emergency_id)
    assert [entry["event"] for entry in emergency["timeline"]] == [e.event for e in stored]
    assert emergency["timeline"][:2] == [
        {"at": emergency["timeline"][0]["at"], "event": "received", "actor": "incident_io",
         "actor_name": "incident_io", "details": stored[0].details},
        {"at": emergency["timeline"][1]["at"], "event": "classified", "actor": "policy",
         "actor_name": "policy", "details": stored[1].details}]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", emergency["timeline"][0]["at"])
    assert emergency["links"]["incident"] == "https://app.incident.io/incidents/123"


async def test_the_period_is_chosen_with_since(site: Site) -> None:
    data = await (await site.client.get("/api/escalations?since=6m")).json()
    assert [view["external_id"] for view in data["escalations"]] == ["01RFH000000002"]
    years = await (await site.client.get("/api/escalations?since=520w")).json()
    assert "01FDAG4SAP5TYPT98WGR2N7W91" in {view["external_id"] for view in years["escalations"]}


@pytest.mark.parametrize("path", ["/", "/api/escalations"])
@pytest.mark.parametrize(("params", "says"), [
    ({"since": "forever"}, "e.g. 90m, 12h, 30d or 2w"),
    ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor is not one this server gave out"),
    ({"cursor": "%%%"}, "cursor is not one this server gave out"),
    ({"state": "asleep"}, "state must be one of received, ignored"),
    ({"source": "email"}, "source must be one of incident_io, pagerduty, slack"),
    ({"outcome": "maybe"}, "outcome must be one of emergency, rfh, ignore, none"),
])
async def test_a_bad_query_is_400_with_the_reason(site: Site, path: str,
                                                  params: dict[str, str], says: str) -> None:
    response = await site.client.get(path, params=params)
    assert response.status == 400
    assert says in await response.text()


@pytest.mark.parametrize("limit", ["0", "201", "ten"])
async def test_the_api_page_size_is_bounded(site: Site, limit: str) -> None:
    response = await site.client.get("/api/escalations", params={"limit": limit})
    assert response.status == 400
    assert "limit must be a whole number from 1 to 200" in await response.text()


async def test_the_api_pages_by_cursor_with_its_filters(site: Site) -> None:
    first = await (await site.client.get("/api/escalations",
                                         params={"since": "520w", "limit": "1"})).json()
    assert first["report"]["escalations"] == 3 and first["next_cursor"]
    ids = [view["external_id"] for view in first["escalations"]]
    cursor = first["next_cursor"]
    while cursor:
        page = await (await site.client.get("/api/escalations", params={
            "since": "520w", "limit": "1", "cursor": cursor})).json()
        assert page["report"] is None  # the figures come with the first page only
        ids += [view["external_id"] for view in page["escalations"]]
        cursor = page["next_cursor"]
    assert ids == ["01RFH000000002", "01EMERGENCY0001", "01FDAG4SAP5TYPT98WGR2N7W91"]
    narrowed = await (await site.client.get("/api/escalations", params={
        "since": "520w", "outcome": "rfh", "state": "rfh", "source": "incident_io"})).json()
    assert [view["external_id"] for view in narrowed["escalations"]] == [
        "01RFH000000002", "01FDAG4SAP5TYPT98WGR2N7W91"]  # the 2021 incident is an RFH too
    paged = await (await site.client.get("/api/escalations", params={
        "since": "520w", "source": "pagerduty"})).json()
    assert paged["escalations"] == []


async def test_the_page_links_to_older_escalations_keeping_its_filters(site: Site) -> None:
    html = await (await site.client.get("/", params={"since": "520w",
                                                     "source": "incident_io"})).text()
    assert html.count('<article class="esc"') == 3  # the waiting one, and two in the list
    assert 'rel="next"' not in html  # three fit on one page
    older = await (await site.client.get("/", params={
        "since": "520w", "outcome": "rfh"})).text()
    assert site.rfh_id in section(older, "escalations")
    assert site.emergency_id not in section(older, "escalations")
    assert '<option value="rfh" selected>' in older


@pytest.mark.parametrize("site", [True], ids=["demo"], indirect=True)
async def test_demo_mode_offers_approve_and_decline_on_awaiting_escalations(site: Site) -> None:
    html = await (await site.client.get("/")).text()
    emergency = article(html, site.emergency_id)
    assert emergency.index("/demo/click") < emergency.index("<dl>")  # the decision first
    forms = re.findall(r'<form class="demo" method="post" action="/demo/click">(.*?)</form>',
                       emergency, re.S)
    assert len(forms) == 2
    approve, decline = forms
    hidden = f'<input type="hidden" name="escalation_id" value="{site.emergency_id}">'
    assert hidden in approve and hidden in decline
    assert '<input type="hidden" name="decision" value="approve">' in approve
    assert '<input type="hidden" name="decision" value="decline">' in decline
    assert '<input type="text" name="reason"' in decline
    assert "/demo/click" not in article(html, site.rfh_id)


async def test_the_api_pages_give_each_escalation_once_while_new_ones_arrive(site: Site
                                                                             ) -> None:
    """Signed deliveries keep arriving between the pages a script reads: new incidents (newer
    than its cursor) and late ones opened minutes ago (behind it). Every escalation that was
    there before the first page comes exactly once; none comes twice."""
    harness = site.harness
    now = datetime.fromtimestamp(harness.clock.now(), UTC)
    for n in range(6):
        body = incident(f"01BEFORE{n:07}", f"Before {n}", "Minor", now - timedelta(minutes=n))
        assert (await harness.incident_io(body)).status == 202
    await harness.settle()
    before = {row.external_id for row in await harness.escalations()}
    seen: list[str] = []
    params = {"since": "520w", "limit": "2"}
    arrived = 0
    while True:
        page = await (await site.client.get("/api/escalations", params=params)).json()
        seen += [view["external_id"] for view in page["escalations"]]
        for late in (False, True):
            opened = now - timedelta(minutes=3, seconds=30) if late else now
            body = incident(f"01ARRIVED{arrived:06}", "Arrived", "Minor", opened)
            assert (await harness.incident_io(body)).status == 202
            arrived += 1
        await harness.settle()
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(before) == 9  # the fixture's three and six more
    assert len(seen) == len(set(seen))
    assert before <= set(seen)
    assert {esc for esc in seen if esc not in before} <= {
        f"01ARRIVED{n:06}" for n in range(arrived)}


def _forged(position: str) -> str:
    """A cursor as a forger makes one: the server's encoding around a chosen JSON text."""
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/", "/api/escalations"])
@pytest.mark.parametrize("position", [
    "[1" + "0" * 400 + ', "x"]',  # a whole number no float holds
    '[0, "\\ud800"]',  # a lone surrogate no database takes
    '[0, "\\u0000"]',  # NUL, which PostgreSQL text refuses
    '[NaN, "x"]', '[Infinity, "x"]', '[true, "x"]', '[0, "x", 1]', '{"a": 1}',
])
async def test_a_forged_cursor_is_400_never_500(site: Site, path: str, position: str) -> None:
    response = await site.client.get(path, params={"cursor": _forged(position)})
    assert response.status == 400
    assert "cursor is not one this server gave out" in await response.text()


async def test_an_empty_cursor_is_the_first_page_with_its_figures(site: Site) -> None:
    """`?cursor=` (a script's empty variable) reads as no cursor: the first page, so the
    figures come with it as they do with every first page."""
    bare = await (await site.client.get("/api/escalations", params={"since": "520w"})).json()
    empty = await (await site.client.get("/api/escalations", params={
        "since": "520w", "cursor": ""})).json()
    assert empty["escalations"] == bare["escalations"]
    assert empty["report"] is not None and empty["report"] == bare["report"]

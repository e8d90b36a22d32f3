"""Stored webhook deliveries become escalations: normalise, merge, classify, decide.

The HTTP handler has already verified and stored the delivery; this job may run twice (after a
crash) and must decide the same way, which it does because it only writes through `Changes`
guarded by the escalation's version.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from daemon.clock import to_datetime
from daemon.domain.events import (
    Fact,
    IncidentFetchFailed,
    IncidentUnreadable,
    IncidentUpdate,
    SourceDelegated,
)
from daemon.domain.gate import Gate
from daemon.domain.models import Criterion, Escalation, Source, Status, person
from daemon.domain.policy import evaluate
from daemon.domain.transitions import DAEMON, Step, on_facts, on_page_event, vendor_event_key
from daemon.integrations.base import IncidentSource
from daemon.jobs.deps import Deps
from daemon.jobs.escalations import changes_for, new_escalation_id
from daemon.jobs.handler import step_handler
from daemon.jobs.views import unreadable_incident_notice
from daemon.logging import get_logger
from daemon.settings import Settings
from daemon.sources.desks import DeskEvent, parse_jsm, parse_zendesk
from daemon.sources.fields import PayloadError, decode_stored
from daemon.sources.incident_io import IncidentIoKind, escalation_from_incident, parse_incident_io
from daemon.sources.pagerduty import (
    TRIGGERED_EVENT,
    PagerDutyEvent,
    PagerDutyKind,
    parse_pagerduty,
)
from daemon.sources.slack import EscalationFormSubmitted
from daemon.store import Changes, Delivery, DeliveryState, Job, NewEvent, NewJob
from daemon.store.mapping import Loaded
from daemon.store.payloads import stored_text
from daemon.workers.retry import Permanent, Retry

INCIDENT_NOTICE = "incident_notice"
PAGE_KEY_PREFIX = "tier2gate-"
DELEGATED_EVENT = "incident.delegated"  # moved to another escalation policy (and service)
ANNOTATED_EVENT = "incident.annotated"  # a note was added
PAGERDUTY_UPDATES = frozenset({ANNOTATED_EVENT, "incident.status_update_published"})
"""V3 event types that are people's updates on an incident: a note, a status update
(https://developer.pagerduty.com/docs/webhooks-overview#event-types)."""
_ROUND_MARK = ".round"
FETCH_ATTEMPTS = 3
"""Tries of the optional incident.io re-fetch while it fails temporarily (5xx, 429, timeouts)
before the webhook's own incident is used instead; the runner's backoff spaces them by seconds.
The fetch only guards against deliveries out of order, so waiting longer would hold up an
escalation for a nicety."""
UNFETCHED_PRIVATE = ("a private incident's webhook carries only its id; set incident_io.api_token "
                     "to an API key that may view private incidents to fetch its details")

log = get_logger("tier2gate.intake")

# PagerDuty events about the Tier 2 page: the thread hears of each but the trigger (it heard of
# the page already); each names who the page reached, for the load figures.
_PAGE_EVENTS = {
    TRIGGERED_EVENT: "assigned",  # the page itself: who it was assigned to
    "incident.acknowledged": "acknowledged",
    "incident.escalated": "escalated",
    "incident.reassigned": "reassigned",
    "incident.delegated": "reassigned",
    "incident.resolved": "resolved",
    "incident.unacknowledged": "unacknowledged",
    "incident.reopened": "reopened",
}


DRILL = "drill"


def drill_external_id(drill_id: str) -> str:
    """The id a drill's escalation is found by (`GET /api/drills/{drill_id}`)."""
    return f"drill-{drill_id}"


def page_key(escalation_id: str, round_no: int = 1) -> str:
    """The PagerDuty incident_key / dedup_key of an escalation's page: one page per round of
    the gate, ever (`tier2gate-<id>`, then `tier2gate-<id>.round2` once a reopen asked again;
    ids never hold a dot)."""
    return PAGE_KEY_PREFIX + escalation_id + (f"{_ROUND_MARK}{round_no}" if round_no > 1 else "")


def parse_page_key(incident_key: str) -> tuple[str, int]:
    """(escalation id, round) of a page key made by `page_key`."""
    escalation_id, _mark, round_no = incident_key.removeprefix(PAGE_KEY_PREFIX).partition(
        _ROUND_MARK)
    return escalation_id, int(round_no) if round_no.isdigit() else 1


def _stale(escalation: Escalation, stored: Escalation) -> bool:
    """Whether facts must not replace the stored ones: older, or as old and saying "open" where
    the stored facts say it ended. Two states with one timestamp cannot be ordered, and a
    reopen decides again (it may page), so it needs facts that are newer than the resolve."""
    if escalation.updated_at != stored.updated_at:
        return escalation.updated_at < stored.updated_at
    return stored.status.ended and escalation.status is Status.OPEN


_OLDER = "older than the state already applied (delivered out of order, or replayed)"


def _desk_event(source: str, payload: object, settings: Settings) -> DeskEvent:
    """A stored desk delivery of `source` (`zendesk` or `jsm`) with the configured mapping."""
    if source == Source.ZENDESK.value:
        return parse_zendesk(payload, field_names=settings.zendesk.field_names)
    return parse_jsm(payload, field_names=settings.jsm.field_names,
                     customer_field=settings.jsm.customer_field)


def _done(delivery: Delivery, state: DeliveryState, note: str) -> Changes:
    return Changes(delivery_done=(delivery.id, state, note))


class Intake:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.recheck = step_handler(deps, self._recheck)

    async def _delivery(self, job: Job) -> tuple[Delivery, object]:
        delivery = await self.deps.store.get_delivery(int(job.payload["delivery"]))
        if delivery is None:
            raise Permanent(f"delivery {job.payload['delivery']} is not in the store")
        return delivery, decode_stored(delivery.body)

    async def incident_io(self, job: Job) -> Changes:
        """A stored incident.io delivery, refreshed from the API when a token is set.

        The re-fetch is optional and never costs the escalation: when it fails, the webhook's
        own incident is used (and the failure noted on the timeline). A private incident's
        webhook carries only its id, so when its fetch fails there is nothing to decide on; it
        is recorded as a failed delivery and announced in the approval channel instead.
        """
        delivery, payload = await self._delivery(job)
        event = parse_incident_io(payload)
        if event.kind is IncidentIoKind.IGNORED:
            return _done(delivery, DeliveryState.IGNORED, event.reason)
        incidents = self.deps.incidents
        if incidents is None:
            if event.escalation is None:
                return await self._unreadable(delivery, event.incident_id, UNFETCHED_PRIVATE)
            return await self._apply(event.escalation, delivery)
        # Deliveries may arrive out of order: the API has the truth.
        latest, failure = await self._fetched(incidents, job, event.incident_id,
                                              fallback=event.escalation is not None)
        if latest is not None:
            return await self._apply(latest, delivery)
        if event.escalation is None:
            return await self._unreadable(delivery, event.incident_id, failure)
        log.warning("intake.fetch_failed", incident_id=event.incident_id, error=failure)
        return await self._apply(event.escalation, delivery, note=IncidentFetchFailed(
            reason=failure, used="the incident as the webhook described it"))

    async def desk(self, job: Job) -> Changes:
        """A stored support desk delivery (Zendesk, JSM): the ticket's facts, applied like an
        incident's (older facts never replace newer ones, a re-delivery changes nothing)."""
        delivery, payload = await self._delivery(job)
        event = _desk_event(delivery.source, payload, self.deps.settings)
        if event.escalation is None:
            return _done(delivery, DeliveryState.IGNORED, event.reason)
        return await self._apply(event.escalation, delivery)

    async def _fetched(self, incidents: IncidentSource, job: Job, incident_id: str, *,
                       fallback: bool) -> tuple[Escalation | None, str]:
        """The incident as incident.io has it now, or None and why not.

        A refusal (401, 403, or 404, which is also what a private incident the key may not see
        answers) or an incident we cannot read will not change by retrying; an outage is
        retried `FETCH_ATTEMPTS` times, and never past the runner's own limit, when the webhook
        has an incident of its own to fall back on (`fallback`). A private incident's webhook has
        none: its fetch is retried for as long as the outage lasts (intake is on the emergency
        path, and the runner tells people once it keeps failing), since giving up would drop
        what may be an S1.
        """
        try:
            return escalation_from_incident(await incidents.fetch_incident(incident_id)), ""
        except Retry as exc:
            if not fallback or job.attempts < min(FETCH_ATTEMPTS,
                                                  self.deps.settings.jobs.max_attempts):
                raise
            return None, f"{exc.reason} (gave up after {job.attempts} attempts)"
        except Permanent as exc:
            return None, (f"{exc}; if the incident is private, the incident.io API key "
                          "(incident_io.api_token) needs permission to view private incidents")
        except PayloadError as exc:
            return None, f"incident.io answered with an incident we cannot read: {exc.reason}"

    async def _unreadable(self, delivery: Delivery, incident_id: str, reason: str) -> Changes:
        """A private incident whose details we cannot get: someone must hear of it.

        Nothing can be decided without its details, so no escalation is made; the delivery is
        recorded as failed with the reason, the escalation an earlier delivery made (if any)
        gets the same on its timeline, and the approval channel gets a notice naming the
        incident and what is missing: once per incident, not once per update.
        """
        log.warning("intake.incident_unreadable", incident_id=incident_id, error=reason)
        row = await self.deps.store.find_escalation(Source.INCIDENT_IO, incident_id)
        events: tuple[NewEvent, ...] = ()
        if row is not None:
            events = (NewEvent.of(row.id, IncidentUnreadable(incident_id=incident_id,
                                                             reason=reason),
                                  DAEMON, self.deps.clock.now()),)
        jobs: tuple[NewJob, ...] = ()
        channel = self.deps.settings.slack.approval_channel
        if self.deps.chat is not None and channel:
            jobs = (NewJob(INCIDENT_NOTICE, f"{INCIDENT_NOTICE}:incident_io:{incident_id}",
                           {"channel": channel,
                            "text": unreadable_incident_notice(incident_id, reason)
                            .model_dump(mode="json")},
                           escalation_id=row.id if row else None),)
        return Changes(events=events, jobs=jobs,
                       delivery_done=(delivery.id, DeliveryState.FAILED, reason))

    async def notice(self, job: Job) -> None:
        """Post a notice prepared by the intake (it is a job so that chat outages retry it)."""
        await self.deps.need_notices().post_notice(str(job.payload["channel"]),
                                                   stored_text(job.payload["text"]))

    async def pagerduty(self, job: Job) -> Changes:
        delivery, payload = await self._delivery(job)
        event = parse_pagerduty(payload, received_at=to_datetime(delivery.received_at))
        settings = self.deps.settings.pagerduty
        incident = event.incident
        if event.event_type in PAGERDUTY_UPDATES and event.incident_id:
            return await self._incident_update(delivery, event.incident_id, event.event_type,
                                               event.agent, event.event_id)
        if event.kind is PagerDutyKind.IGNORED:
            return _done(delivery, DeliveryState.IGNORED, event.reason)
        if incident is not None and incident.incident_key.startswith(PAGE_KEY_PREFIX):
            return await self._page_event(delivery, event)
        if event.kind is PagerDutyKind.CUSTOM_FIELDS:
            found = await self.deps.store.load_by_source(Source.PAGERDUTY, event.incident_id)
            if found is None:
                return _done(delivery, DeliveryState.IGNORED,
                             "custom fields for an incident that is not an escalation")
            current = found.escalation
            # Each such event carries all of the incident's custom fields, so the newest one
            # wins whole. Its time is kept apart from `updated_at`: custom fields and incident
            # attributes come in separate events, and a newer event of one kind must not make
            # an older-but-unseen event of the other look out of date.
            if current.fields_updated_at and event.occurred_at < current.fields_updated_at:
                return _done(delivery, DeliveryState.IGNORED, _OLDER)
            merged = current.model_copy(update={
                "fields": event.fields, "fields_updated_at": event.occurred_at})
            return await self._apply(merged, delivery)
        assert event.escalation is not None and incident is not None
        # A source incident stays tied to its escalation by its own id wherever it moves: one
        # delegated to another service (the Tier 2 service included) or reassigned still ends,
        # reopens and earns its retro like before the move.
        if await self.deps.store.find_escalation(Source.PAGERDUTY, incident.id) is not None:
            note: Fact | None = None
            if event.event_type == DELEGATED_EVENT:
                note = SourceDelegated(service_id=incident.service_id,
                                       event_id=event.event_id)
            return await self._apply(event.escalation, delivery, keep_fields=True, note=note)
        if settings.tier2_service_id and incident.service_id == settings.tier2_service_id:
            return await self._page_event(delivery, event)
        if settings.source_service_ids and incident.service_id not in settings.source_service_ids:
            return _done(delivery, DeliveryState.IGNORED,
                         f"service {incident.service_id} is not an escalation source")
        return await self._apply(event.escalation, delivery, keep_fields=True)

    async def _incident_update(self, delivery: Delivery, incident_id: str, event_type: str,
                               agent: str, event_id: str) -> Changes:
        """A note or a status update on an escalation's PagerDuty incident, or on the Tier 2
        page tier2gate sent for it: news from the people working it, which keeps the update
        cadence (`jobs.followthrough`). Recorded once per event (`incident_update`); its text
        stays in PagerDuty."""
        row = await self.deps.store.find_escalation(Source.PAGERDUTY, incident_id)
        if row is None:
            paged = await self.deps.store.paged_escalation(incident_id)
            row = await self.deps.store.get_escalation(paged) if paged else None
        if row is None:
            return _done(delivery, DeliveryState.IGNORED,
                         "an update on an incident that is not an escalation")
        kind = "note" if event_type == ANNOTATED_EVENT else "status_update"
        entry = NewEvent.of(row.id, IncidentUpdate(update=kind, event_id=event_id),
                            agent or "pagerduty", self.deps.clock.now(),
                            vendor_event_key(event_id))
        return Changes(events=(entry,), delivery_done=(delivery.id, DeliveryState.PROCESSED,
                                                       f"incident {kind}"))

    async def declare(self, form: EscalationFormSubmitted, delivery: Delivery) -> Changes:
        """An escalation declared in Slack with `/tier2`: it has no incident of its own."""
        policy = self.deps.policy.current()
        yes = policy.truthy_values[0]
        known = {c.value for c in Criterion if policy.criteria_fields.get(c)}
        fields = {policy.criteria_fields[Criterion(name)][0]: yes for name in form.criteria
                  if name in known}
        if form.details:
            fields["Details"] = form.details
        # Evidence answers under the first field name of their item; a name the policy in
        # force does not list (edited since the form opened, or made up) is dropped.
        listed = {item.fields[0] for item in policy.evidence}
        fields.update({name: answer for name, answer in form.evidence if name in listed})
        now = to_datetime(self.deps.clock.now())
        escalation = Escalation(
            source=Source.CHAT, external_id=form.view_id,
            reference=f"SLACK-{form.view_id[-6:].upper()}", title=form.title,
            severity=form.severity, customer=form.customer, fields=fields,
            declared_by=person(chat_id=form.user_id, name=form.user_name),
            origin=form.channel, created_at=now, updated_at=now)
        return await self._apply(escalation, delivery)

    async def drill(self, job: Job) -> Changes:
        """A rehearsal from `tier2gate drill`: a Slack-declared escalation with the policy's
        first severity and every criterion asserted, so any policy that pages anything calls
        it an emergency; marked `drill` so the page goes to the drill service only."""
        policy = self.deps.policy.current()
        drill_id = str(job.payload["drill_id"])
        yes = policy.truthy_values[0]
        now = to_datetime(self.deps.clock.now())
        escalation = Escalation(
            source=Source.CHAT, external_id=drill_external_id(drill_id),
            reference=f"DRILL-{drill_id[:8].upper()}",
            title="DRILL: rehearsal of the Tier 2 page path (not a real emergency)",
            severity=next(iter(policy.severity_aliases), ""), customer="tier2gate drill",
            fields={names[0]: yes for names in policy.criteria_fields.values() if names},
            drill=True, created_at=now, updated_at=now)
        return await self._apply(escalation, None)

    async def _apply(self, escalation: Escalation, delivery: Delivery | None, *,
                     keep_fields: bool = False,
                     note: Fact | None = None) -> Changes:
        """Merge and decide; `note` is a fact for the timeline of the
        escalation, e.g. why its facts came from the webhook rather than the API."""
        store = self.deps.store
        previous = await store.load_by_source(escalation.source, escalation.external_id)
        now = to_datetime(self.deps.clock.now())
        if previous is not None:
            if _stale(escalation, previous.escalation) and delivery is not None:
                return _done(delivery, DeliveryState.IGNORED, _OLDER)
            if keep_fields:
                escalation = escalation.model_copy(update={
                    "fields": previous.escalation.fields,
                    "fields_updated_at": previous.escalation.fields_updated_at})
            if escalation.declared_by is None:
                # Only some events say who declared (PagerDuty's `incident.triggered`); the
                # others, whose agent acknowledged or resolved, keep the declarer known.
                escalation = escalation.model_copy(
                    update={"declared_by": previous.escalation.declared_by})
            if previous.escalation.origin:
                # Where it was declared does not move: an incident delegated to another
                # service (Tier 2's included) stays its declaring team's.
                escalation = escalation.model_copy(
                    update={"origin": previous.escalation.origin})
        return self._decide(escalation, previous, now, delivery, note)

    def _decide(self, escalation: Escalation, previous: Loaded | None, now: datetime,
                delivery: Delivery | None, note: Fact | None = None
                ) -> Changes:
        step = self._judged(escalation, previous, now)
        escalation_id = previous.row.id if previous else new_escalation_id()
        done = (delivery.id, DeliveryState.PROCESSED, "") if delivery else None
        changes = changes_for(escalation_id, escalation, step, now,
                              previous=previous.row if previous else None, delivery=done)
        if note is None:
            return changes
        return dataclasses.replace(changes, events=(
            *changes.events, NewEvent.of(escalation_id, note, DAEMON, now.timestamp())))

    def _judged(self, escalation: Escalation, previous: Loaded | None, now: datetime) -> Step:
        """`escalation`'s facts judged under the policy in force, over what was known."""
        policy = self.deps.policy.current()
        decision = evaluate(policy, escalation, now, self.deps.calendar())
        return on_facts(
            previous.gate if previous else Gate(), escalation, decision, now,
            previous=previous.escalation if previous else None,
            rfh_due=policy.business_hours.next_business_start(now),
        )

    async def _recheck(self, _job: Job, current: Loaded, now: datetime) -> Step:
        """A time-based criterion may hold now ("S1 unresolved for 30 minutes")."""
        return self._judged(current.escalation, current, now)

    async def _responders(self, event: PagerDutyEvent, kind: str) -> tuple[dict[str, str], ...]:
        """Who this event says the page reached: the assignees it names (on trigger, escalate,
        reassign), and on acknowledge the acknowledger. Each with their PagerDuty profile's
        time zone, which the load figures judge their day by; "" when the lookup failed (the
        figures then use the business time zone and say so). A failed lookup never holds up
        the event."""
        assert event.incident is not None
        people = dict(event.incident.assigned) if kind != "resolved" else {}
        if kind == "acknowledged" and event.agent_id:
            people = {event.agent_id: event.agent}
        found = []
        for user_id, name in people.items():
            zone = ""
            if self.deps.pager is not None:
                try:
                    zone = await self.deps.pager.user_time_zone(user_id) or ""
                except (Retry, Permanent) as exc:
                    log.warning("fatigue.time_zone_unknown", user_id=user_id, error=str(exc))
            found.append({"id": user_id, "name": name, "time_zone": zone})
        return tuple(found)

    async def _page_event(self, delivery: Delivery, event: PagerDutyEvent) -> Changes:
        assert event.incident is not None
        event_type, incident_key = event.event_type, event.incident.incident_key
        agent, event_id = event.agent, event.event_id
        kind = _PAGE_EVENTS.get(event_type)
        # Looked up before the escalation is read: the lookup may take a round trip, and the
        # escalation read last is the least likely to have changed before this job writes.
        responders = await self._responders(event, kind) if kind else ()
        escalation_id, page_round = parse_page_key(incident_key)
        current = await self.deps.store.load_escalation(escalation_id) if kind else None
        if current is None:
            return _done(delivery, DeliveryState.IGNORED,
                         f"Tier 2 incident event {event_type} not tied to an escalation")
        # The timeline refuses the entry a second time anyway (its once_key); looking first
        # lets the delivery say so instead of staying "stored".
        if any(entry.details.get("event_id") == event_id
               for entry in await self.deps.store.timeline(current.row.id)):
            return _done(delivery, DeliveryState.IGNORED,
                         f"PagerDuty event {event_id} is already on the timeline")
        now = to_datetime(self.deps.clock.now())
        step = on_page_event(current.gate, str(kind), agent, now, event_id,
                             source=current.escalation.source, page_round=page_round,
                             responders=responders, incident_id=event.incident.id)
        return changes_for(current.row.id, current.escalation, step, now, previous=current.row,
                           delivery=(delivery.id, DeliveryState.PROCESSED, ""))

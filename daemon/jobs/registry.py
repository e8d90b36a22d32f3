"""Job kind -> handler: the one place that says which code runs each side effect."""

from __future__ import annotations

from daemon.domain import transitions as t
from daemon.jobs.answers import ANSWER
from daemon.jobs.approval import Asking
from daemon.jobs.approval_timers import ApprovalTimers
from daemon.jobs.approvers import Approvers
from daemon.jobs.attention import Attention
from daemon.jobs.deciding import INTERACTION, Deciding
from daemon.jobs.deps import Deps
from daemon.jobs.desk_notes import DESK_NOTE, DeskNotes
from daemon.jobs.ee import HANDOFF, ROTATION_CHECK, EEJobs
from daemon.jobs.followthrough import CADENCE, RETRO_POLL, Followthrough
from daemon.jobs.forms import COMMAND, Forms
from daemon.jobs.headsup import HEADSUP, Headsup
from daemon.jobs.intake import (
    DRILL,
    INCIDENT_NOTICE,
    INTAKE_DESK,
    INTAKE_INCIDENT_IO,
    INTAKE_PAGERDUTY,
    Intake,
)
from daemon.jobs.issues import Issues
from daemon.jobs.morning import MORNING, MorningQueue
from daemon.jobs.notes import Notes
from daemon.jobs.paging import Paging
from daemon.jobs.policy import EVENTS_CHANGED, POLICY_CHANGED, REEVALUATE, PolicyJobs
from daemon.jobs.retention import PRUNE, Retention
from daemon.workers.runner import Handler

URGENT = frozenset({INTAKE_INCIDENT_IO, INTAKE_PAGERDUTY, INTAKE_DESK, INTERACTION, ANSWER,
                    t.REQUEST_APPROVAL, t.PAGE, t.EE_OFFER, t.EE_WAIT})
"""The emergency path: never given up on while a vendor is only temporarily failing."""


def handlers(deps: Deps) -> dict[str, Handler]:
    intake = Intake(deps)
    ee = EEJobs(deps)
    approvers = Approvers(deps)
    asking, timers, notes = Asking(deps, approvers), ApprovalTimers(deps), Notes(deps, approvers)
    paging, issues = Paging(deps), Issues(deps)
    deciding = Deciding(deps, approvers, intake, ee)
    policy = PolicyJobs(deps)
    followthrough = Followthrough(deps)
    return {
        INTAKE_INCIDENT_IO: intake.incident_io,
        INTAKE_PAGERDUTY: intake.pagerduty,
        INTAKE_DESK: intake.desk,
        DESK_NOTE: DeskNotes(deps).note,
        INCIDENT_NOTICE: intake.notice,
        DRILL: intake.drill,
        t.RECHECK: intake.recheck,
        t.REQUEST_APPROVAL: asking.request,
        t.UPDATE_APPROVAL: asking.update,
        t.REMIND: timers.remind,
        t.TIMEOUT: timers.timeout,
        t.THREAD_NOTE: notes.thread_note,
        t.TELL_USER: notes.tell_user,
        INTERACTION: deciding.interaction,
        ANSWER: deciding.answered,
        COMMAND: Forms(deps, approvers).open_form,
        t.PAGE: paging.page,
        t.RETRO: issues.retro,
        t.RFH_ISSUE: issues.rfh_issue,
        t.RFH_NOTICE: issues.rfh_notice,
        t.RFH_NOTE: issues.rfh_note,
        t.RETRO_NOTE: issues.retro_note,
        t.MERGE_INTO: issues.merge_into,
        t.DIRECT_NOTE: notes.direct_note,
        t.APPROVAL_COPY: asking.copy,
        t.ATTENTION: Attention(deps, approvers.approver_ids).handle,
        POLICY_CHANGED: policy.changed,
        REEVALUATE: policy.reevaluate,
        EVENTS_CHANGED: policy.events_changed,
        t.EE_OFFER: ee.offer,
        t.EE_UPDATE: ee.update,
        t.EE_WAIT: ee.wait_over,
        t.EE_UNCLAIMED: ee.unclaimed,
        t.EE_QUIET: ee.quiet,
        ROTATION_CHECK: ee.check_rotation,
        HANDOFF: ee.handoff,
        PRUNE: Retention(deps.store, deps.settings.retention).prune,
        HEADSUP: Headsup(deps).run,
        MORNING: MorningQueue(deps).run,
        RETRO_POLL: followthrough.retro_poll,
        CADENCE: followthrough.cadence,
    }

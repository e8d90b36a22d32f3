"""Preflight: read-only checks that the configured vendors will do what tier2gate asks of them.

`tier2gate doctor` prints them; the daemon runs the same checks at start (warnings in the log)
and every `preflight.interval_s` (`PreflightMonitor`: `tier2gate_preflight_ok{check}`, the
`/readyz` detail, the dashboard), so a revoked token, a missing scope or a bot removed from the
approval channel shows before the first emergency finds it.

Nothing here changes anything at a vendor: every call is a read (`auth.test`,
`conversations.info`, `GET /services/{id}`, the tracker's permission endpoints...). A failing
check never makes the daemon unready: webhooks must still be stored while a person fixes Slack.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from daemon.customer_calendar import CUSTOMER_PROPERTY, inspect_sources
from daemon.domain.policy import Policy
from daemon.ingress.signatures import decode_standard_webhook_secret
from daemon.integrations.base import (
    ChannelState,
    ChatClient,
    ChatPreflight,
    DeskPreflight,
    IncidentApi,
    PagerClient,
    Tracker,
)
from daemon.integrations.failures import Permanent, Retry
from daemon.logging import get_logger
from daemon.metrics import Metrics
from daemon.roster import RosterError, load_roster
from daemon.settings import Settings
from daemon.sources.incident_io import CUSTOMER_FIELDS

log = get_logger("tier2gate.preflight")

ROUTING_KEY = re.compile(r"[a-zA-Z0-9]{32}")
"""An Events API v2 integration (routing) key is 32 characters ("routing_key … 32 character",
PagerDuty developer docs, events-API-v2/02-Trigger-Events.md)."""
SLACK_SIGNING_SECRET = re.compile(r"[0-9a-zA-Z]{32}")
"""Slack shows the signing secret as 32 hexadecimal characters (App → Basic Information); the
usual mistake is the 24-character verification token or a bot token pasted instead."""
SELECT_TYPES = frozenset({"single_select", "multi_select"})
TEXT_TYPES = frozenset({"text"})
AUTH_CODES = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed",
                        "token_expired"})
"""Slack codes that mean the token itself is no good (https://docs.slack.dev/reference/methods/auth.test)."""
SCOPES_URL = "https://api.slack.com/apps → your app → OAuth & Permissions"
ZENDESK_API_FIX = ("the Zendesk API token is revoked or wrong: add a new one (Admin Center → "
                     "Apps and integrations → Zendesk API) and set zendesk.api_token "
                     "(TIER2GATE_ZENDESK__API_TOKEN); check zendesk.url and zendesk.email")
JSM_API_FIX = ("the Jira API token is revoked or wrong: create a new one "
                 "(id.atlassian.com → Security → API tokens) for jsm.email and set "
                 "jsm.api_token (TIER2GATE_JSM__API_TOKEN); check jsm.url")
ZENDESK_TEST_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="  # noqa: S105 (public)
"""The fixed secret Zendesk signs "Test webhook" requests with
(https://developer.zendesk.com/documentation/webhooks/verifying/): never a real webhook's."""
DESK_SECRET = re.compile(r"[\x21-\x7e]{16,}")
"""A desk webhook secret as pasted: printable ASCII without spaces, long enough to be one
(Zendesk's signing secrets and a generated Jira secret are far longer than 16)."""


class Status(StrEnum):
    OK = "ok"
    FAIL = "fail"
    SKIP = "skip"  # not configured, or not checkable without another failing check


@dataclass(frozen=True)
class CheckResult:
    name: str  # stable: the metric label and the JSON key
    status: Status
    reason: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


@dataclass
class Vendors:
    """The read-only side of each configured vendor client (None: not configured)."""

    chat: ChatClient | None = None
    pager: PagerClient | None = None
    catalog: IncidentApi | None = None
    tracker: Tracker | None = None
    zendesk: DeskPreflight | None = None
    jsm: DeskPreflight | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


def ok(name: str, reason: str) -> CheckResult:
    return CheckResult(name, Status.OK, reason)


def fail(name: str, reason: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, reason, fix)


def skip(name: str, reason: str) -> CheckResult:
    return CheckResult(name, Status.SKIP, reason)


async def run_checks(settings: Settings, policy: Policy, vendors: Vendors) -> list[CheckResult]:
    """Every check, in the order a person would fix them (credentials before channels)."""
    results = secret_checks(settings)
    results += await _slack_checks(settings, vendors.chat)
    results += await _guarded("smoc", _smoc, settings, vendors)
    results += await _guarded("backups", _backups, settings, vendors)
    results += await _guarded("ee_roster", _ee_roster, settings, vendors)
    results += await _guarded("pagerduty_tier2", _tier2, settings, vendors)
    results += await _guarded("pagerduty_from_email", _from_email, settings, vendors)
    results += await _guarded("drill_target", _drill_target, settings, vendors)
    results += await _guarded("incident_io_fields", _fields, settings, vendors, policy)
    results += await _guarded("tracker", _tracker, settings, vendors)
    results += await _guarded("zendesk_api", _zendesk_api, settings, vendors)
    results += await _guarded("jsm_api", _jsm_api, settings, vendors)
    results += await _team_checks(policy, vendors)
    results.append(await _customer_events(settings, policy))
    return results


async def _guarded(name: str, check: Callable[..., Awaitable[CheckResult]],
                   *args: object) -> list[CheckResult]:
    """A vendor failure is the check's result, in the shared vocabulary's words (secret-free);
    a temporary one says so, since trying again later may be all it needs."""
    try:
        return [await check(*args)]
    except Retry as exc:
        return [fail(name, exc.reason, "the vendor did not answer properly: run doctor again "
                                       "shortly; if it persists, check the URL and network")]
    except Permanent as exc:
        return [fail(name, exc.reason, _fix_for(name, exc.code))]


def _fix_for(name: str, code: str) -> str:
    if code in AUTH_CODES:
        return ("the Slack token is revoked or wrong: reinstall the app to the workspace and "
                "set slack.bot_token (TIER2GATE_SLACK__BOT_TOKEN) to its new xoxb- token")
    if code == "missing_scope":
        return f"grant the missing scope ({SCOPES_URL}), reinstall the app, update the token"
    fixes = {
        "smoc": "check pagerduty.smoc_schedule_id and pagerduty.api_token (REST API key)",
        "pagerduty_tier2": "check pagerduty.tier2_service_id and pagerduty.api_token",
        "pagerduty_from_email": "check pagerduty.from_email and pagerduty.api_token",
        "drill_target": "check drill.pagerduty_service_id and pagerduty.api_token",
        "incident_io_fields": "check incident_io.api_token (it needs to view custom fields) "
                              "and incident_io.api_url",
        "tracker": "check tracker.url, tracker.project and tracker.token",
        "zendesk_api": ZENDESK_API_FIX,
        "jsm_api": JSM_API_FIX,
    }
    return fixes.get(name, "see the reason; docs: runbooks/preflight-failed.md")


# --- offline ------------------------------------------------------------------------------------


def secret_checks(settings: Settings) -> list[CheckResult]:
    """Webhook and signing secrets that could never verify a delivery, caught before the first
    one is refused with a 401 (or, for a bad `whsec_`, a 503 on every incident.io webhook)."""
    results: list[CheckResult] = []
    incident_secret = settings.incident_io.webhook_secret
    if incident_secret is None:
        results.append(skip("incident_io_webhook_secret", "not configured"))
    else:
        try:
            decode_standard_webhook_secret(incident_secret.get_secret_value())
            results.append(ok("incident_io_webhook_secret", "a well-formed whsec_ secret"))
        except ValueError as exc:
            results.append(fail("incident_io_webhook_secret", str(exc),
                                "copy the signing secret (whsec_…) of the webhook endpoint "
                                "from incident.io → Settings → Webhooks into "
                                "incident_io.webhook_secret"))
    pd_secrets = [s.get_secret_value() for s in settings.pagerduty.webhook_secrets]
    if not pd_secrets:
        results.append(skip("pagerduty_webhook_secrets", "not configured"))
    elif any(s != s.strip() or not s for s in pd_secrets):
        results.append(fail("pagerduty_webhook_secrets", "a secret has spaces around it",
                            "paste each V3 subscription secret exactly, comma-separated"))
    else:
        results.append(ok("pagerduty_webhook_secrets", f"{len(pd_secrets)} secret(s)"))
    signing = settings.slack.signing_secret
    if signing is None:
        results.append(skip("slack_signing_secret", "not configured"))
    elif not SLACK_SIGNING_SECRET.fullmatch(signing.get_secret_value()):
        results.append(fail("slack_signing_secret", "not 32 letters and digits",
                            "copy the Signing Secret (not the token or client secret) from "
                            "the app's Basic Information page into slack.signing_secret"))
    else:
        results.append(ok("slack_signing_secret", "well-formed"))
    results += _desk_secret_checks(settings)
    return results


def _desk_configured(section: object) -> bool:
    return any(getattr(section, name, None) for name in
               ("webhook_secret", "automation_token", "url", "api_token"))


def _desk_secret_checks(settings: Settings) -> list[CheckResult]:
    results: list[CheckResult] = []
    zendesk = settings.zendesk
    name = "zendesk_webhook_secret"
    if not _desk_configured(zendesk):
        results.append(skip(name, "Zendesk is not configured"))
    elif zendesk.webhook_secret is None:
        results.append(fail(name, "zendesk.webhook_secret is not set: every delivery is "
                                  "refused", ZENDESK_HOOK_FIX))
    else:
        secret = zendesk.webhook_secret.get_secret_value()
        if secret == ZENDESK_TEST_SECRET:
            results.append(fail(name, "this is Zendesk's fixed test secret, not the "
                                      "webhook's", ZENDESK_HOOK_FIX))
        elif not DESK_SECRET.fullmatch(secret):
            results.append(fail(name, "not a signing secret (spaces, or too short)",
                                ZENDESK_HOOK_FIX))
        else:
            results.append(ok(name, "well-formed"))
    jsm = settings.jsm
    name = "jsm_webhook_secret"
    secret = jsm.webhook_secret.get_secret_value() if jsm.webhook_secret else ""
    token = jsm.automation_token.get_secret_value() if jsm.automation_token else ""
    if not _desk_configured(jsm):
        results.append(skip(name, "Jira Service Management is not configured"))
    elif not secret and not token:
        results.append(fail(name, "neither jsm.webhook_secret nor jsm.automation_token is "
                                  "set: every delivery is refused", JSM_HOOK_FIX))
    elif any(value and not DESK_SECRET.fullmatch(value) for value in (secret, token)):
        results.append(fail(name, "jsm.webhook_secret or jsm.automation_token has spaces or "
                                  "is shorter than 16 characters", JSM_HOOK_FIX))
    elif not secret:
        results.append(ok(name, "only jsm.automation_token: unsigned automation requests, "
                                "lower assurance (docs/setup/jsm.md)"))
    else:
        results.append(ok(name, "well-formed" + (", and an automation token (lower "
                                                  "assurance)" if token else "")))
    return results


ZENDESK_HOOK_FIX = ("reveal the webhook's signing secret (Admin Center → Apps and "
                      "integrations → Webhooks → the webhook) and set zendesk.webhook_secret "
                      "(TIER2GATE_ZENDESK__WEBHOOK_SECRET)")
JSM_HOOK_FIX = ("set jsm.webhook_secret (TIER2GATE_JSM__WEBHOOK_SECRET) to the secret of the "
                  "Jira admin webhook (Jira settings → System → WebHooks); see "
                  "docs/setup/jsm.md")


# --- Slack --------------------------------------------------------------------------------------


def needed_scopes(settings: Settings, private_approval_channel: bool) -> dict[str, str]:
    """Scope -> the feature that needs it, for the features configured."""
    needed = {"chat:write": "posting approval requests",
              "users:read": "checking approvers",
              "commands": "the /tier2 command"}
    needed["groups:history" if private_approval_channel else "channels:history"] = (
        "finding an approval request again after a crash")
    if settings.pagerduty.smoc_schedule_id:
        needed["users:read.email"] = "finding the SMOC's Slack user by email"
    if settings.approval.backup_group_id:
        needed["usergroups:read"] = "backup approvers given as a user group"
    return needed


async def _slack_checks(settings: Settings, chat: ChatPreflight | None) -> list[CheckResult]:
    if chat is None:
        return [skip("slack_token", "slack.bot_token is not set: no approvals can be posted")]
    try:
        identity = await chat.identity()
    except (Retry, Permanent) as exc:
        code = exc.code
        return [fail("slack_token", exc.reason, _fix_for("slack_token", code))]
    results = [ok("slack_token", f"valid, bot user {identity.user_id}")]
    channels: list[tuple[str, str | None]] = [
        ("approval_channel", settings.slack.approval_channel),
        ("rfh_channel", settings.slack.rfh_channel),
        ("tier2_channel", settings.slack.tier2_channel)]
    if settings.ee.roster_file is not None and settings.ee.channel:
        channels.append(("ee_channel", settings.ee.channel))  # EE offers and handoffs
    private = False
    for name, channel in channels:
        result, state = await _channel(name, channel, chat, identity.scopes)
        results.append(result)
        if name == "approval_channel" and state is not None:
            private = state.is_private
    results.append(_scopes(settings, identity.scopes, private))
    return results


def _scopes(settings: Settings, granted: frozenset[str] | None, private: bool) -> CheckResult:
    if granted is None:
        return skip("slack_scopes", "Slack named no scopes (no x-oauth-scopes header)")
    missing = {scope: why for scope, why in needed_scopes(settings, private).items()
               if scope not in granted}
    if not missing:
        return ok("slack_scopes", "granted: " + ", ".join(sorted(granted)))
    return fail("slack_scopes",
                "missing " + "; ".join(f"{scope} ({why})" for scope, why in missing.items()),
                f"add them under Bot Token Scopes ({SCOPES_URL}), reinstall the app, "
                "update slack.bot_token if it changed")


def _setting(name: str) -> str:
    """The setting that names a checked channel (`ee_channel` is `ee.channel`)."""
    return "ee.channel" if name == "ee_channel" else f"slack.{name}"


async def _channel(name: str, channel: str | None, chat: ChatPreflight,
                   granted: frozenset[str] | None
                   ) -> tuple[CheckResult, ChannelState | None]:
    if not channel:
        if name == "approval_channel":
            return fail(name, "slack.approval_channel is not set",
                        "set it to the channel id (C…) where the SMOC is asked"), None
        return skip(name, "not configured"), None
    try:
        state = await chat.channel_state(channel)
    except (Retry, Permanent) as exc:
        if exc.code == "missing_scope" or (granted is not None and not (
                {"channels:read", "groups:read"} & granted)):
            return fail(name, f"cannot see {channel}: the token lacks channels:read "
                              "(groups:read for a private channel)",
                        f"grant channels:read and groups:read ({SCOPES_URL}) so doctor can "
                        "check membership"), None
        if exc.code == "channel_not_found":
            return fail(name, f"{channel} does not exist or the bot cannot see it",
                        f"check {_setting(name)} (a channel id, C…, not its name); for a private "
                        "channel invite the bot first"), None
        return fail(name, exc.reason, _fix_for(name, exc.code)), None
    if state.is_archived:
        return fail(name, f"{channel} is archived",
                    f"unarchive it or set {_setting(name)} to another channel"), state
    if not state.is_member:
        return fail(name, f"the bot is not a member of {channel}",
                    f"in Slack, run `/invite @<the app>` in {channel}"), state
    return ok(name, f"{channel}: the bot is a member"), state


async def _customer_events(settings: Settings, policy: Policy) -> CheckResult:
    """The customer-events calendar as the daemon reads it: every file and the URL."""
    name = "customer_events"
    if not settings.customer_events.configured:
        return skip(name, "no calendar (customer_events.files, customer_events.ical_url)")
    found, problems = await inspect_sources(
        settings.customer_events, policy.business_hours.zone, datetime.now(UTC),
        settings.tls.ca_file)
    if problems:
        return fail(name, "; ".join(problems),
                    "fix the file named (check-config names its line and key), or the URL: "
                    "customer_events.ical_url must answer 200 with an iCalendar document")
    skipped = (f"; {found.skipped} entries name no customer ({CUSTOMER_PROPERTY} or a "
               "'Customer: …' summary) and are left out" if found.skipped else "")
    if found.too_frequent:
        skipped += (f"; {found.too_frequent} recurring events repeat too often to expand (by "
                    "the minute or second, or from too long ago) and are left out")
    return ok(name, f"{len(found.events)} event(s) around now{skipped}")


async def _smoc(settings: Settings, vendors: Vendors) -> CheckResult:
    """The SMOC *now*: the schedule's on-call user, their email, their Slack user."""
    name = "smoc"
    schedule = settings.pagerduty.smoc_schedule_id
    static = settings.approval.smoc_user_id
    if not schedule:
        if static:
            return ok(name, f"a fixed SMOC, {static} (approval.smoc_user_id)")
        if settings.approval.backup_user_ids or settings.approval.backup_group_id:
            return skip(name, "no SMOC schedule: backups approve")
        return fail(name, "nobody can approve: no SMOC schedule and no backups",
                    "set pagerduty.smoc_schedule_id, or approval.backup_user_ids")
    if vendors.pager is None:
        return fail(name, "pagerduty.api_token is not set: the SMOC schedule cannot be read",
                    "set pagerduty.api_token (a REST API key)")
    email = await vendors.pager.smoc_email()
    if email is None:
        return fail(name, f"nobody is on call on schedule {schedule} now",
                    "fill the gap in the PagerDuty schedule, or add backup approvers")
    if vendors.chat is None:
        return fail(name, f"SMOC {email}: Slack is not configured to find them",
                    "set slack.bot_token")
    user_id = await vendors.chat.user_id_for_email(email)
    if user_id is None:
        return fail(name, f"no Slack user has the email of the SMOC on call ({email})",
                    "make their PagerDuty email the same as their Slack email")
    return ok(name, f"{email} on schedule {schedule} is Slack user {user_id}")


async def _backups(settings: Settings, vendors: Vendors) -> CheckResult:
    name = "backups"
    users, group = settings.approval.backup_user_ids, settings.approval.backup_group_id
    if not users and not group:
        return skip(name, "no backup approvers configured")
    if vendors.chat is None:
        return fail(name, "Slack is not configured", "set slack.bot_token")
    gone = [user for user in users if not await vendors.chat.user_active(user)]
    if gone:
        return fail(name, "not active Slack users: " + ", ".join(gone),
                    "fix approval.backup_user_ids (Slack user ids, U…)")
    members = await vendors.chat.group_members(group) if group else ()
    if group and not members:
        return fail(name, f"user group {group} has no members",
                    "add people to the group or fix approval.backup_group_id")
    return ok(name, f"{len(users) + len(members)} backup approver(s)")


async def _ee_roster(settings: Settings, vendors: Vendors) -> CheckResult:
    """The Escalation Engineer roster: valid, someone on rotation now, every EE of a rotation
    not yet over an active Slack user, and a channel for the offers."""
    name = "ee_roster"
    path = settings.ee.roster_file
    if path is None:
        return skip(name, "no EE roster (ee.roster_file): escalations skip the EE step")
    try:
        roster = load_roster(path)
    except RosterError as exc:
        return fail(name, str(exc), "fix the roster file at the line named (see README, "
                                    "Escalation Engineers)")
    channel = settings.ee.offer_channel(settings.slack)
    if not channel:
        return fail(name, "no channel for EE offers and handoffs",
                    "set ee.channel (or slack.rfh_channel) to a channel id (C…)")
    if vendors.chat is None:
        return fail(name, "Slack is not configured", "set slack.bot_token")
    now = datetime.now(UTC)
    current = [r for r in roster.rotations if r.end > now]
    ids = dict.fromkeys(u for r in current for u in r.user_ids)
    gone = [user for user in ids if not await vendors.chat.user_active(user)]
    if gone:
        return fail(name, "not active Slack users: " + ", ".join(gone),
                    f"fix the slack_user_id entries in {path} (Slack user ids, U…)")
    rotation = roster.at(now)
    if rotation is None:
        return ok(name, f"{len(roster.rotations)} rotation(s); nobody is on rotation now: "
                        "escalations go on without an EE")
    return ok(name, f"rotation {rotation.id}: " + ", ".join(
        f"{e.name} ({e.slack_user_id})" for e in rotation.engineers))


# --- PagerDuty ----------------------------------------------------------------------------------


async def _tier2(settings: Settings, vendors: Vendors) -> CheckResult:
    return await _page_target("pagerduty_tier2", settings.pagerduty.tier2_service_id,
                              settings.pagerduty.tier2_routing_key, vendors,
                              "pagerduty.tier2_service_id", "pagerduty.tier2_routing_key",
                              required=True)


async def _drill_target(settings: Settings, vendors: Vendors) -> CheckResult:
    return await _page_target("drill_target", settings.drill.pagerduty_service_id,
                              settings.drill.pagerduty_routing_key, vendors,
                              "drill.pagerduty_service_id", "drill.pagerduty_routing_key",
                              required=False)


async def _page_target(name: str, service_id: str | None, key: object, vendors: Vendors,
                       service_setting: str, key_setting: str, *, required: bool
                       ) -> CheckResult:
    if service_id:
        if vendors.pager is None:
            return fail(name, "pagerduty.api_token is not set", "set a REST API key")
        return ok(name, f"service {service_id}: {await vendors.pager.service_name(service_id)}")
    secret = getattr(key, "get_secret_value", None)
    if secret is not None:
        if ROUTING_KEY.fullmatch(secret()):
            return ok(name, "routing key well-formed (32 characters)")
        return fail(name, f"{key_setting} is not 32 letters and digits",
                    "copy the Integration Key of the service's Events API v2 integration")
    if required:
        return fail(name, "no way to page Tier 2",
                    f"set {service_setting} (with pagerduty.api_token and from_email) or "
                    f"{key_setting}")
    return skip(name, "not configured: drills record the page without paging")


async def _from_email(settings: Settings, vendors: Vendors) -> CheckResult:
    name = "pagerduty_from_email"
    if not (settings.pagerduty.tier2_service_id or settings.drill.pagerduty_service_id):
        return skip(name, "not needed: pages go through the Events API")
    email = settings.pagerduty.from_email
    if not email:
        return fail(name, "pagerduty.from_email is not set; PagerDuty requires it to create "
                          "incidents", "set it to the login email of a PagerDuty user")
    if vendors.pager is None:
        return fail(name, "pagerduty.api_token is not set", "set a REST API key")
    if not await vendors.pager.user_exists(email):
        return fail(name, f"no PagerDuty user has the login email {email}",
                    "set pagerduty.from_email to an existing user's login email")
    return ok(name, f"{email} is a PagerDuty user")


# --- incident.io --------------------------------------------------------------------------------


async def _fields(settings: Settings, vendors: Vendors, policy: Policy) -> CheckResult:
    """Each criterion needs one of its fields (the policy's names, case-insensitive) as a
    select field offering a truthy option, or a text field; the Customer field must exist."""
    name = "incident_io_fields"
    if settings.incident_io.webhook_secret is None:
        return skip(name, "incident.io is not configured")
    if vendors.catalog is None:
        return skip(name, "incident_io.api_token is not set: the fields cannot be read "
                          "(set it to have them checked)")
    fields = {f.name.casefold(): f for f in await vendors.catalog.custom_fields()}
    truthy = {value.casefold() for value in policy.truthy_values}
    problems: list[str] = []
    for criterion, names in policy.criteria_fields.items():
        found = [fields[n.casefold()] for n in names if n.casefold() in fields]
        if not found:
            problems.append(f"no field named {' or '.join(repr(n) for n in names)} "
                            f"({criterion.value})")
            continue
        usable = [f for f in found if f.field_type in TEXT_TYPES or (
            f.field_type in SELECT_TYPES and truthy & {o.casefold() for o in f.options})]
        if not usable:
            field = found[0]
            problems.append(f"{field.name!r} is {field.field_type} without an option in "
                            f"truthy_values ({criterion.value})")
    if not any(n.casefold() in fields for n in CUSTOMER_FIELDS):
        problems.append(f"no {' or '.join(repr(n) for n in CUSTOMER_FIELDS)} field")
    if problems:
        return fail(name, "; ".join(problems),
                    "create or rename the field in incident.io (Settings → Custom fields: "
                    "single-select with a Yes option), or name it in the policy's "
                    "criteria_fields")
    return ok(name, f"{len(policy.criteria_fields)} criteria fields and the customer field")


# --- tracker ------------------------------------------------------------------------------------


async def _tracker(settings: Settings, vendors: Vendors) -> CheckResult:
    name = "tracker"
    if vendors.tracker is None:
        return fail(name, "tracker.token or tracker.project is not set: no retro can be "
                          "opened", "set both (see the README, Tracker)")
    access = await vendors.tracker.create_access()
    where = f"{settings.tracker.kind} {settings.tracker.project}"
    if not access.can_create:
        return fail(name, f"{where}: the token cannot create labelled issues ({access.detail})",
                    "give the token write access: GitLab `api` scope and Planner role or "
                    "higher; GitHub push or triage; Jira Create Issues")
    return ok(name, f"{where}: {access.detail}")


# --- support desks -----------------------------------------------------------------------------


async def _zendesk_api(settings: Settings, vendors: Vendors) -> CheckResult:
    """The token works and its user may add internal notes (an agent or admin)."""
    name = "zendesk_api"
    if not _desk_configured(settings.zendesk):
        return skip(name, "Zendesk is not configured")
    if vendors.zendesk is None:
        return fail(name, "zendesk.url, email or api_token is not set: no internal note can "
                          "be written", "set all three (docs/setup/zendesk.md, section 1)")
    me = await vendors.zendesk.identity()
    if not me.active:
        return fail(name, f"{me.name} is deactivated in Zendesk",
                    "set zendesk.email to an active agent and give it a new API token")
    if me.role not in ("agent", "admin"):
        return fail(name, f"{me.name} is {me.role or 'no agent'}: only agents and admins can "
                          "add internal notes",
                    "set zendesk.email to an agent who can comment on the escalating tickets")
    return ok(name, f"{me.name} ({me.role}) can add internal notes")


async def _jsm_api(settings: Settings, vendors: Vendors) -> CheckResult:
    name = "jsm_api"
    if not _desk_configured(settings.jsm):
        return skip(name, "Jira Service Management is not configured")
    if vendors.jsm is None:
        return fail(name, "jsm.url, email or api_token is not set: no internal comment can "
                          "be written", "set all three (docs/setup/jsm.md, section 1)")
    me = await vendors.jsm.identity()
    if not me.active:
        return fail(name, f"{me.name} is deactivated in Jira",
                    "set jsm.email and jsm.api_token to an active agent's account")
    return ok(name, f"the token acts as {me.name}")


# --- output and the daemon's monitor ------------------------------------------------------------


# --- Tier 1 teams --------------------------------------------------------------------------------


async def _team_checks(policy: Policy, vendors: Vendors) -> list[CheckResult]:
    """What a policy team names of its own (`teams:`): its approval and RFH channels and the SMOC
    on call on its schedule now. What it leaves to the settings is checked above."""
    results: list[CheckResult] = []
    for team in policy.teams or ():
        for key in ("approval_channel", "rfh_channel"):
            channel = getattr(team, key)
            if channel:
                results += await _guarded(f"team_{team.name}_{key}", _team_channel, team.name,
                                          key, channel, vendors)
        if team.smoc_schedule_id:
            results += await _guarded(f"team_{team.name}_smoc", _team_smoc, team.name,
                                      team.smoc_schedule_id, vendors)
    return results


async def _team_channel(team: str, key: str, channel: str, vendors: Vendors) -> CheckResult:
    name, where = f"team_{team}_{key}", f"team {team!r} {key} in the policy"
    if vendors.chat is None:
        return fail(name, "Slack is not configured", "set slack.bot_token")
    state = await vendors.chat.channel_state(channel)
    if state.is_archived:
        return fail(name, f"{channel} is archived", f"unarchive it or change {where}")
    if not state.is_member:
        return fail(name, f"the bot is not a member of {channel}",
                    f"in Slack, run `/invite @<the app>` in {channel} (or change {where})")
    return ok(name, f"{channel}: the bot is a member")


async def _team_smoc(team: str, schedule: str, vendors: Vendors) -> CheckResult:
    name = f"team_{team}_smoc"
    if vendors.pager is None:
        return fail(name, f"pagerduty.api_token is not set: schedule {schedule} cannot be read",
                    "set pagerduty.api_token (a REST API key)")
    email = await vendors.pager.smoc_email(schedule)
    if email is None:
        return fail(name, f"nobody is on call on team {team!r}'s schedule {schedule} now",
                    "fill the gap in the PagerDuty schedule, or give the team backups")
    user_id = await vendors.chat.user_id_for_email(email) if vendors.chat else None
    if user_id is None:
        return fail(name, f"no Slack user has the email of the SMOC on call ({email})",
                    "make their PagerDuty email the same as their Slack email")
    return ok(name, f"{email} on schedule {schedule} is Slack user {user_id}")


def render_text(results: list[CheckResult]) -> str:
    width = max((len(r.name) for r in results), default=0)
    marks = {Status.OK: "✓", Status.FAIL: "✗", Status.SKIP: "-"}
    lines = []
    for result in results:
        line = f"{marks[result.status]} {result.name:<{width}}  {result.reason}"
        if result.fix:
            line += f"\n  {'':<{width}}  fix: {result.fix}"
        lines.append(line)
    failed = sum(r.failed for r in results)
    lines.append(f"\n{failed} check(s) failed" if failed else "\nall checks passed")
    return "\n".join(lines) + "\n"


def as_json(results: list[CheckResult]) -> dict[str, object]:
    return {"ok": not any(r.failed for r in results),
            "checks": [{**asdict(r), "status": r.status.value} for r in results]}


class PreflightMonitor:
    """The daemon's own preflight: at start, then every `interval_s`. Each replica checks from
    where it runs (its tokens, its network path), so the results live in the process."""

    def __init__(self, settings: Settings, policy: Callable[[], Policy], vendors: Vendors,
                 metrics: Metrics) -> None:
        self.settings = settings
        self.policy = policy
        self.vendors = vendors
        self.metrics = metrics
        self.results: list[CheckResult] = []

    async def run_once(self) -> None:
        previous = {r.name: r for r in self.results}
        self.results = await run_checks(self.settings, self.policy(), self.vendors)
        for result in self.results:
            if result.status is not Status.SKIP:
                self.metrics.preflight_ok.labels(result.name).set(0 if result.failed else 1)
            before = previous.get(result.name)
            # Logged when it changes (and at start), not every 15 minutes while it stays.
            if result.failed and (before is None or not before.failed):
                log.warning("preflight.failed", check=result.name, reason=result.reason,
                            fix=result.fix)
            elif before is not None and before.failed and not result.failed:
                log.info("preflight.recovered", check=result.name)

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a bug in one run must not end the monitor
                log.exception("preflight.crashed")
            await asyncio.sleep(self.settings.preflight.interval_s)

    @property
    def failing(self) -> list[CheckResult]:
        return [r for r in self.results if r.failed]

    def detail(self) -> dict[str, object]:
        """For `/readyz`: news, not a reason to be unready (webhooks must still be stored)."""
        if not self.results:
            return {}
        return {"preflight": {"ok": not self.failing,
                              "failing": [asdict(r) | {"status": r.status.value}
                                          for r in self.failing]}}

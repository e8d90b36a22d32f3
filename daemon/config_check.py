"""What can be told about the settings without calling any vendor: `check-config` and `serve`.

These rules span sections (live mode needs a webhook source, Slack and a way to page), so
they are not pydantic validators: the tests and the demo build partial `Settings` on purpose,
and a validator would refuse them. They run where an operator's configuration enters instead:
`tier2gate check-config` prints them, `tier2gate serve` refuses to start on any error and logs
the warnings. `tier2gate doctor` checks what needs the vendors (token valid, bot in channel).

Errors are settings that cannot work: every webhook or click would be refused, or an
escalation would reach a step that can only fail. Warnings are gaps that leave part of the
flow undone (no tracker: no retro issue) but do not stop the rest.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from daemon.customer_calendar import is_web_address
from daemon.domain.policy import Policy
from daemon.ingress.signatures import decode_standard_webhook_secret
from daemon.jobs.routing import routing
from daemon.settings import ENV_PREFIX, Settings
from daemon.yamlfile import YamlDoc, dotted

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    level: Level
    message: str  # names the settings (as env variables where they are secrets) and the fix


def _given(value: SecretStr | str | None) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value().strip())
    return bool(value and value.strip())


def check_settings(settings: Settings) -> list[Finding]:
    """Every problem found, errors first. Never prints or returns a secret value."""
    found = _malformed(settings) + _half_configured(settings) + _live_needs(settings)
    found += _gaps(settings)
    return sorted(found, key=lambda finding: finding.level != "error")


def check_against_policy(settings: Settings, severities: Collection[str],
                         doc: YamlDoc | None) -> list[Finding]:
    """Settings keyed by the policy's canonical severities (the KPI targets) that name one the
    policy does not know: that target would judge no figure, and the severity it was meant
    for would have none. `doc`: the settings file, to name the line."""
    found = []
    for table in ("ack_minutes", "retro_completion"):
        for name in getattr(settings.kpi, table):
            if name in severities:
                continue
            loc = ("kpi", table, name)
            env_name = f"{ENV_PREFIX}KPI__{table.upper()}"
            if doc is not None and doc.has(loc) and env_name not in os.environ:
                where = f"{doc.name} line {doc.line_of(loc)}: {dotted(loc)}"
            elif env_name in os.environ:
                where = f"environment variable {env_name}: {name}"
            else:
                where = dotted(loc)
            found.append(Finding("error", f"{where}: unknown severity {name!r}; the policy's "
                                          f"canonical severities: {', '.join(severities)}"))
    return found


def errors(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.level == "error"]


def _malformed(settings: Settings) -> list[Finding]:
    return _malformed_calendar_url(settings) + _malformed_incident_io_secret(settings)


def _malformed_calendar_url(settings: Settings) -> list[Finding]:
    """An iCalendar URL that is no web address fails at every fetch; it is a secret, so the
    message never quotes it."""
    url = settings.customer_events.ical_url
    if url is None or not _given(url) or is_web_address(url.get_secret_value()):
        return []
    return [Finding("error", "customer_events.ical_url is not an http(s) address: give the "
                             "calendar's https:// (or webcal://) address")]


def _malformed_incident_io_secret(settings: Settings) -> list[Finding]:
    secret = settings.incident_io.webhook_secret
    if secret is None or not _given(secret):
        return []
    value = secret.get_secret_value().strip()
    problem = ""
    if not value.startswith("whsec_"):
        problem = "does not start with whsec_"
    else:
        try:
            decode_standard_webhook_secret(value)
        except ValueError as exc:
            problem = str(exc).removeprefix("the Standard Webhooks secret ")
    if not problem:
        return []
    # Without this check every incident.io delivery would be answered 503 at run time.
    return [Finding("error", f"TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET {problem}: copy the whole "
                             "signing secret (whsec_ followed by base64) from incident.io "
                             "Settings → Webhooks → your endpoint")]


def _half_configured(settings: Settings) -> list[Finding]:
    """A vendor that is set up in part: whatever depends on the missing piece can only fail."""
    slack, pd, inc, tracker = (settings.slack, settings.pagerduty, settings.incident_io,
                               settings.tracker)
    found: list[str] = []
    if _given(slack.bot_token) and not _given(slack.signing_secret):
        found.append("slack.bot_token is set but TIER2GATE_SLACK__SIGNING_SECRET is not: every "
                     "button click and /tier2 would be refused (Slack app → Basic Information "
                     "→ Signing Secret)")
    if _given(inc.api_token) and not _given(inc.webhook_secret):
        found.append("incident.io is configured (incident_io.api_token) but "
                     "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET is not: every incident.io webhook "
                     "would be refused (401)")
    if pd.source_service_ids and not pd.webhook_secrets:
        found.append("pagerduty.source_service_ids names the services to escalate from but "
                     "TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS is not set: every PagerDuty webhook "
                     "would be refused (401)")
    if _given(pd.tier2_service_id) and not _given(pd.api_token):
        found.append("pagerduty.tier2_service_id is set but TIER2GATE_PAGERDUTY__API_TOKEN is "
                     "not: a page to a service goes through the REST API")
    if _given(pd.tier2_service_id) and _given(pd.api_token) and not _given(pd.from_email):
        found.append("pagerduty.tier2_service_id is set but pagerduty.from_email is not: "
                     "PagerDuty requires the email of a user on the account to create an "
                     "incident")
    if _given(pd.smoc_schedule_id) and not _given(pd.api_token):
        found.append("pagerduty.smoc_schedule_id is set but TIER2GATE_PAGERDUTY__API_TOKEN is "
                     "not: the SMOC on call cannot be looked up")
    if _given(pd.tier2_schedule_id) and not _given(pd.api_token):
        found.append("pagerduty.tier2_schedule_id is set but TIER2GATE_PAGERDUTY__API_TOKEN is "
                     "not: the Tier 2 engineer on call cannot be looked up (the approval "
                     "request's load line, the weekend heads-up)")
    if _given(tracker.token) != _given(tracker.project):
        missing = "tracker.project" if _given(tracker.token) else "TIER2GATE_TRACKER__TOKEN"
        found.append(f"the {tracker.kind} tracker is set up in part: {missing} is missing, so "
                     "no retro or request-for-help issue can be opened")
    return [Finding("error", message) for message in found]


def _live_needs(settings: Settings) -> list[Finding]:
    """Live mode that could not work. In shadow mode nobody is paged, so only the gaps that
    keep shadow mode from showing anything (no source, no Slack) remain, as warnings."""
    live = settings.mode == "live"
    level: Level = "error" if live else "warning"
    slack, pd = settings.slack, settings.pagerduty
    found: list[Finding] = []
    if not pd.webhook_secrets and not _given(settings.incident_io.webhook_secret):
        found.append(Finding(level, f"{settings.mode} mode has no webhook source: set "
                                    "TIER2GATE_INCIDENT_IO__WEBHOOK_SECRET (incident.io) or "
                                    "TIER2GATE_PAGERDUTY__WEBHOOK_SECRETS (PagerDuty V3), "
                                    "else every webhook is refused"))
    missing_slack = [name for name, value in (
        ("TIER2GATE_SLACK__BOT_TOKEN", slack.bot_token),
        ("TIER2GATE_SLACK__SIGNING_SECRET", slack.signing_secret),
        ("slack.approval_channel", slack.approval_channel)) if not _given(value)]
    if missing_slack:
        found.append(Finding(level, f"{settings.mode} mode cannot ask the SMOC in Slack: "
                                    f"missing {', '.join(missing_slack)}"))
    pages = _given(pd.tier2_routing_key) or (_given(pd.api_token) and _given(pd.tier2_service_id))
    if live and not pages:
        found.append(Finding("error", "live mode has no way to page Tier 2: set "
                                      "TIER2GATE_PAGERDUTY__TIER2_ROUTING_KEY (Events API v2 "
                                      "integration key), or TIER2GATE_PAGERDUTY__API_TOKEN + "
                                      "pagerduty.tier2_service_id + pagerduty.from_email"))
    return found


def _gaps(settings: Settings) -> list[Finding]:
    found: list[Finding] = []
    approval, pd = settings.approval, settings.pagerduty
    if settings.mode == "live" and not _given(settings.tracker.token) \
            and not _given(settings.tracker.project):
        found.append(Finding("warning", "no tracker (tracker.token, tracker.project): retro and "
                                        "request-for-help issues cannot be opened"))
    if settings.customer_events.configured and not settings.slack.tier2():
        found.append(Finding("warning", "customer events are configured but no channel is: "
                                        "set slack.tier2_channel for the weekend heads-up "
                                        "(events are still flagged on approval requests)"))
    resolves_smoc = _given(pd.smoc_schedule_id) and _given(pd.api_token)
    if not (resolves_smoc or _given(approval.smoc_user_id) or approval.backup_user_ids
            or _given(approval.backup_group_id)):
        found.append(Finding("warning", "nobody can approve: set pagerduty.smoc_schedule_id "
                                        "(with the API token), approval.smoc_user_id or backup "
                                        "approvers; until then every emergency takes the "
                                        "policy's timeout fallback"))
    if settings.ee.roster_file is not None and not settings.ee.offer_channel(settings.slack):
        found.append(Finding("warning", "ee.roster_file is set but no channel takes the EE "
                                        "offers: set ee.channel (or slack.rfh_channel); until "
                                        "then every escalation skips the EE step"))
    return found


def check_teams(settings: Settings, policy: Policy) -> list[Finding]:
    """The policy's Tier 1 teams against the settings they fall back on: a team whose SMOC
    cannot be looked up, a team nobody can approve for, a team nothing recognises; and a rule
    (shared or a team's) waiting for a customer event with no calendar to have one."""
    found: list[Finding] = []
    if not settings.customer_events.configured:
        ruled = [("", rule) for rule in policy.rules] + [
            (f"team {team.name!r} ", rule) for team in policy.teams or () for rule in team.rules]
        found += [Finding("warning", f"{owner}rule {rule.name!r} needs a customer event "
                                     "(customer_event_active: true) but no customer-events "
                                     "calendar is configured (customer_events.files or "
                                     "ical_url): it can never match")
                  for owner, rule in ruled if rule.when.customer_event_active is True]
    token = _given(settings.pagerduty.api_token)
    for team in policy.teams or ():
        route = routing(settings, policy, team.name)
        if _given(team.smoc_schedule_id) and not token:
            found.append(Finding("error", f"team {team.name!r} names smoc_schedule_id "
                                          f"{team.smoc_schedule_id} but "
                                          "TIER2GATE_PAGERDUTY__API_TOKEN is not set: its SMOC "
                                          "cannot be looked up"))
        resolves = _given(route.smoc_schedule_id) and token
        if not (resolves or _given(route.smoc_user_id) or route.backup_user_ids
                or _given(route.backup_group_id)):
            found.append(Finding("warning", f"nobody can approve for team {team.name!r}: give "
                                            "it a smoc_schedule_id, smoc_user_id or backups in "
                                            "the policy (or set them in the settings)"))
        if team.name != policy.default_team and not team.recognised_by.model_dump(
                exclude_defaults=True):
            found.append(Finding("warning", f"team {team.name!r} has no recognised_by: no "
                                            "escalation can belong to it"))
    return sorted(found, key=lambda finding: finding.level != "error")

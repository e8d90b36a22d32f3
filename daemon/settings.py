"""Settings: YAML file + `TIER2GATE_<SECTION>__<KEY>` environment overrides, as the contract says.

Built once in `main()` and passed down; nothing reads the environment after that. Every secret
is a `SecretStr` so that printing or logging a settings object can never leak it.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from daemon.yamlfile import YamlDoc, YamlError, dotted

ENV_PREFIX = "TIER2GATE_"
CONFIG_ENV = "TIER2GATE_CONFIG"
DEFAULT_CONFIG_FILE = Path("config/tier2gate.yaml")
MASK = "**********"
DEFAULT_POLICY_FILE = Path("config/policy.yaml")
BUILTIN_POLICY_FILE = Path(__file__).resolve().parent / "defaults" / "policy.yaml"
MIN_TOKEN_CHARS = 16  # a bearer token guards the dashboard from the network: not a password
# `TIER2GATE_*` names that are not settings but are read by other parts of this repository:
# the Caddyfile's upstream list and the test suite's knobs. Anything else under the prefix
# that names no setting is a typo, and a typo'd secret must not be silently ignored.
OTHER_ENV_NAMES = frozenset({"TIER2GATE_UPSTREAMS", "TIER2GATE_TEST_POSTGRES_URL",
                             "TIER2GATE_FUZZ_SEED", "TIER2GATE_CRASH_SEED"})


class ConfigError(Exception):
    """Settings that cannot be used; the message is meant for the operator, secret-free."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpSettings(Section):
    host: str = "0.0.0.0"  # noqa: S104 - a daemon behind a load balancer listens on all interfaces
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    shutdown_timeout_s: float = Field(default=10.0, ge=0)
    # A connection must send a complete request head within this long of connecting or of its
    # previous answer, else it is closed: the idle keep-alive timeout and the header read
    # timeout in one (aiohttp's keep-alive timer, armed at connect, is not extended by bytes).
    idle_timeout_s: float = Field(default=15.0, gt=0)
    # The whole body must have arrived this long after its head, else 408 and the connection
    # closes. Vendors send a few KB at once; only a trickling client needs longer.
    body_timeout_s: float = Field(default=10.0, gt=0)
    # Request bodies not yet answered, across all connections: over it, 503 (retry later).
    # 16 MiB is 16 bodies at the 1 MiB limit, or thousands of real webhooks of a few KB.
    max_buffered_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    # Connections open at once on the public listener; more are closed at once, unread. Under
    # a greedy client each holds ~0.1-0.2 MB of buffers; vendors need a few at a time.
    max_connections: int = Field(default=256, gt=0)


class AdminSettings(Section):
    """The read side (dashboard, API, metrics, detailed readiness): its own listener.

    On loopback it needs no credentials (only this machine reaches it). Bound elsewhere, every
    request needs `Authorization: Bearer <token>`, or the identity header that an
    authenticating proxy in front of it sets (oauth2-proxy: `X-Forwarded-User`); without
    either configured it refuses everything.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8081, ge=0, le=65535)
    token: SecretStr | None = None
    # Trusted only when every path to the admin listener goes through that proxy, which
    # overwrites the header: anyone else reaching the listener could send it.
    proxy_user_header: str | None = None
    # Connections open at once on the admin listener (a browser opens ~6, Prometheus 1).
    max_connections: int = Field(default=32, gt=0)

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_TOKEN_CHARS} characters "
                             "(e.g. `openssl rand -hex 24`)")
        return value


class SlackSettings(Section):
    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    approval_channel: str | None = None
    rfh_channel: str | None = None
    # Where Tier 2 reads: the Friday heads-up of customer events; default rfh_channel, then
    # approval_channel.
    tier2_channel: str | None = None

    def tier2(self) -> str | None:
        """The channel Tier 2 reads, after the fallbacks."""
        return self.tier2_channel or self.rfh_channel or self.approval_channel


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class PagerDutySettings(Section):
    api_token: SecretStr | None = None
    from_email: str | None = None
    api_url: str = "https://api.pagerduty.com"
    events_url: str = "https://events.pagerduty.com"
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    smoc_schedule_id: str | None = None
    # Tier 2's on-call schedule: whose load the approval request shows as "Tier 2 on call"
    # (unset: the engineer tier2gate paged last), who `/tier2 who` names as on call for
    # Tier 2, and who the weekend heads-up names.
    tier2_schedule_id: str | None = None
    tier2_service_id: str | None = None
    tier2_routing_key: SecretStr | None = None
    source_service_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="services whose incidents are escalations; empty = all but the Tier 2 service",
    )
    # V3 signs no timestamp, so a captured delivery verifies forever. PagerDuty itself retries
    # a delivery for up to 48 h (and queues the incident's later events behind it), so a real
    # delivery is at most ~48 h old; 72 h leaves a day for clock skew and a retry that began
    # late in the window. Anything older is recorded as stale and acts on nothing.
    max_event_age_s: float = Field(default=72 * 3600.0, gt=0)

    _split = field_validator("webhook_secrets", "source_service_ids", mode="before")(
        _split_commas
    )


class IncidentIoSettings(Section):
    webhook_secret: SecretStr | None = None
    api_token: SecretStr | None = None
    api_url: str = "https://api.incident.io"


class ZendeskSettings(Section):
    """A Zendesk Support account as an escalation source (`POST /webhooks/zendesk`) and the
    place where each step is written back as an internal note on the ticket."""

    webhook_secret: SecretStr | None = None  # the webhook's signing secret (Admin Center)
    url: str = ""  # https://SUBDOMAIN.zendesk.com
    email: str = ""  # the agent the API token acts as (`email/token` basic auth)
    api_token: SecretStr | None = None
    # Ticket custom field id -> the display name the policy's `criteria_fields` use.
    field_names: dict[str, str] = Field(default_factory=dict)


class JsmSettings(Section):
    """A Jira Service Management site as an escalation source (`POST /webhooks/jira`) and the
    place where each step is written back as an internal comment on the request."""

    webhook_secret: SecretStr | None = None  # the admin webhook's secret (X-Hub-Signature)
    # Lower assurance: Jira automation's unsigned "Send web request" with this shared secret
    # in the `X-Tier2gate-Token` header (see README). Unset: only signed deliveries count.
    automation_token: SecretStr | None = None
    url: str = ""  # https://SITE.atlassian.net
    email: str = ""  # the account the API token belongs to (basic auth)
    api_token: SecretStr | None = None
    field_names: dict[str, str] = Field(default_factory=dict)  # customfield_NNNNN -> name
    customer_field: str = "customfield_10002"  # JSM "Organizations"
    # Jira signs no timestamp: a delivery whose signed body `timestamp` is older is refused.
    # Jira retries a failed delivery a few times shortly after it; an hour leaves room for those
    # retries and for clock skew.
    max_event_age_s: float = Field(default=3600.0, gt=0)


class TlsSettings(Section):
    ca_file: Path | None = None


class TrackerSettings(Section):
    kind: Literal["gitlab", "github", "jira"] = "gitlab"
    url: str = "https://gitlab.com"
    token: SecretStr | None = None
    project: str | None = None


class JobSettings(Section):
    """How side effects are retried. Defaults suit vendor outages of minutes, not seconds."""

    workers: int = Field(default=4, ge=1, le=64)
    max_attempts: int = Field(default=10, ge=1)
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_max_s: float = Field(default=600.0, gt=0)
    # Emergency-path jobs (intake, approval request, clicks, the page) never give up on a
    # retryable failure and wait at most this long between attempts.
    urgent_retry_max_s: float = Field(default=30.0, gt=0)
    lease_s: float = Field(default=30.0, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)
    drain_timeout_s: float = Field(default=8.0, ge=0)
    # While webhook deliveries keep arriving without a pause (intake saturated), claim no new
    # job for up to this long, so the CPU goes to answering vendors; then work as usual even
    # if the burst goes on. 0: never wait. Only where the runner shares a process with the
    # listeners (`serve --role all`).
    burst_yield_s: float = Field(default=10.0, ge=0)


class ClockSettings(Section):
    """Noticing wall-clock steps (see `daemon.clockwatch`)."""

    # How often the wall clock is compared with elapsed time (and the policy file looked at).
    check_interval_s: float = Field(default=1.0, gt=0)
    # A disagreement of at least this much between two looks is a step, not drift.
    step_threshold_s: float = Field(default=5.0, gt=0)


class ApprovalSettings(Section):
    """Who may approve besides the SMOC resolved from PagerDuty, and how to reach them."""

    backup_user_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    backup_group_id: str | None = None  # a Slack user group (S...) of backup approvers
    smoc_user_id: str | None = None  # static SMOC for installations without a schedule
    smoc_cache_s: float = Field(default=60.0, ge=0)

    _split = field_validator("backup_user_ids", mode="before")(_split_commas)


class IssueSettings(Section):
    """The tracker issue tier2gate opens: retro for paged emergencies, RFH for the rest."""

    title: str = "Retro: {title} ({reference})"
    labels: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["tier2gate", "retro"])
    assignee: str | None = None
    template_file: Path | None = None  # a Jinja2 Markdown template; default: the built-in one

    _split = field_validator("labels", mode="before")(_split_commas)


class RetroSettings(IssueSettings):
    open_on: Literal["resolve", "page"] = "resolve"


class RfhSettings(IssueSettings):
    title: str = "Request for help: {title} ({reference})"
    labels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["tier2gate", "request-for-help"])
    # When a business window opens: judge the held requests for help again and post them to
    # the Tier 2 channel in one message (`morning_queue` job).
    morning_queue: bool = True


class RetentionSettings(Section):
    """How long the store keeps what only matters for a while. The audit log (escalations and
    their timelines) is kept unless `escalations_days` is set.

    A pruned delivery's id is forgotten: a re-delivery of it afterwards would be new. So
    `deliveries_days` must outlast every vendor's retries (PagerDuty and incident.io retry for
    hours, Slack for seconds); the floor of one day keeps a typo from making that possible.
    """

    deliveries_days: float = Field(default=30.0, ge=1)  # stored webhook bodies, processed
    jobs_days: float = Field(default=30.0, ge=1)  # finished jobs: done and dead-lettered
    # 0 keeps every escalation; otherwise ones at rest (ignored, rfh, declined, closed; no job
    # left, nothing needing attention) untouched for this long go with their timelines.
    escalations_days: float = Field(default=0.0, ge=0)
    interval_s: float = Field(default=3600.0, ge=60)  # how often the `prune` job runs


class FollowthroughSettings(Section):
    """After the page: retros followed until done, and active emergencies kept talking.

    Retros are followed by a bounded poll of the tracker (one request per open retro issue,
    at most `retro_poll_batch` per run, the next run resuming where this one stopped; a rate
    limit ends the run early and the next waits for the tracker's Retry-After). A retro open
    longer than `retro_overdue_days` gets one reminder per such period in the escalation's
    Slack thread. The update cadence itself (minutes per severity) is in the policy;
    `cadence_check_interval_s` is how often active emergencies are looked at."""

    retro_poll_interval_s: float = Field(default=3600.0, ge=60)
    retro_poll_batch: int = Field(default=50, ge=1, le=500)
    retro_overdue_days: float = Field(default=14.0, gt=0)
    cadence_check_interval_s: float = Field(default=60.0, ge=10)


class KpiSettings(Section):
    """The escalation program's targets; `report`, the dashboard and /metrics say for each
    figure whether it meets its target. Shares are fractions (0.95 is 95%)."""

    ack_minutes: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: {"S1": 15.0})  # p90 time to acknowledge, per severity
    retro_completion: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: {"S1": 0.95, "S2": 0.80})  # retros complete, per severity
    reopen_rate_max: float = Field(default=0.05, ge=0, le=1)
    cadence_adherence: float = Field(default=0.95, ge=0, le=1)  # share of active time
    evidence_complete: float = Field(default=0.90, ge=0, le=1)  # share of emergencies
    top: int = Field(default=5, ge=1, le=50)  # how many drivers each top list shows
    # The custom fields (display names as the source sends them) that name the service an
    # escalation is about, for the top services; none: that list stays empty.
    service_fields: list[str] = Field(default_factory=lambda: ["Service", "Affected service"])
class EESettings(Section):
    """The Escalation Engineer rotation (see `daemon/roster.py` for the roster file).

    No `roster_file`: no EE step, escalations go straight on as before."""

    roster_file: Path | None = None  # YAML: date ranges -> engineers; re-read when it changes
    # Where offers and the rotation handoff are posted; default: slack.rfh_channel, then
    # slack.approval_channel.
    channel: str | None = None
    # A request for help nobody takes this long goes on without an EE (RFH notice and issue).
    take_within_minutes: float = Field(default=120.0, gt=0)
    # The owning EE is reminded when nothing happened on their escalation this long.
    quiet_after_minutes: float = Field(default=240.0, gt=0)
    # How often a rotation change is looked for (one check per period across replicas).
    check_interval_s: float = Field(default=300.0, ge=10)

    def offer_channel(self, slack: SlackSettings) -> str | None:
        return self.channel or slack.rfh_channel or slack.approval_channel


class PreflightSettings(Section):
    """The vendor checks of `tier2gate doctor`, also run by the daemon: at start and every
    `interval_s`, so a revoked token or a bot removed from a channel shows before it matters."""

    enabled: bool = True
    # Each run makes about a dozen read calls; every 15 minutes is far inside every vendor's
    # rate limit and still catches a Friday-evening change before the weekend.
    interval_s: float = Field(default=900.0, ge=60)


class DrillSettings(Section):
    """Where `tier2gate drill` pages when its rehearsal is approved. Neither set: the click is
    recorded and nobody is paged."""

    pagerduty_service_id: str | None = None
    pagerduty_routing_key: SecretStr | None = None
    labels: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["tier2gate", "drill"])

    _split = field_validator("labels", mode="before")(_split_commas)


def _quoted_time(value: object) -> object:
    """YAML 1.1 reads an unquoted 15:00 as the number 900 (base 60): refuse it by name."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError('write the time in quotes, e.g. "15:00"')
    return value


def _hhmm(value: str) -> str:
    hours, sep, minutes = value.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2
            and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(f"{value!r} is not a time of day like 15:00")
    return f"{int(hours):02d}:{minutes}"


class CustomerEventSettings(Section):
    """The calendar of customer events (maintenance windows, upgrades, migrations, launches):
    flagged on approval requests, judged by the policy's `customer_event_active`, and listed
    for the weekend in a heads-up to Tier 2. Neither files nor a URL: no calendar."""

    # iCalendar (.ics) or YAML (.yaml/.yml, a list under `events:`) files, re-read when changed.
    files: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    # An iCalendar URL, e.g. a shared calendar's secret address (so a secret: never logged).
    ical_url: SecretStr | None = None
    refresh_s: float = Field(default=900.0, ge=60)  # how often the URL is fetched again
    # The heads-up: weekday and local time (policy business_hours.timezone); it lists events
    # from then until the end of the weekend (the policy's weekend_days).
    headsup_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "fri"
    headsup_time: str = "15:00"

    _split = field_validator("files", mode="before")(_split_commas)
    _quoted = field_validator("headsup_time", mode="before")(_quoted_time)
    _time = field_validator("headsup_time")(_hhmm)

    @property
    def configured(self) -> bool:
        return bool(self.files) or (self.ical_url is not None
                                    and bool(self.ical_url.get_secret_value()))


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "json"
    # `http.access` lines: `all` requests; `except_deliveries` (default) all but the webhook
    # deliveries the store took, whose own line (`webhook.stored`, `webhook.duplicate`,
    # `webhook.stale`, with the delivery id) already says what happened: one line per
    # delivery, not two (a line costs ~10 % of a delivery's CPU); `off`.
    access: Literal["all", "except_deliveries", "off"] = "except_deliveries"


class Settings(BaseSettings):
    """Everything tier2gate can be told. Unknown keys are errors, never silently ignored."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_ignore_empty=True,  # `KEY=` in an env file means "not set", not an empty secret
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    mode: Literal["live", "shadow"] = "live"
    database_url: str = "sqlite:///./var/tier2gate.db"
    policy_file: Path = DEFAULT_POLICY_FILE
    policy_settle_s: float = Field(
        default=2.0, ge=0,
        description="an edited policy file is put in force once unchanged this long")
    public_url: str = Field(default="", description="where people reach this daemon's dashboard")
    runbook_base_url: str = Field(
        default="", description="prefix that turns a policy runbook path into a link")
    http: HttpSettings = HttpSettings()
    admin: AdminSettings = AdminSettings()
    slack: SlackSettings = SlackSettings()
    pagerduty: PagerDutySettings = PagerDutySettings()
    incident_io: IncidentIoSettings = IncidentIoSettings()
    zendesk: ZendeskSettings = ZendeskSettings()
    jsm: JsmSettings = JsmSettings()
    tls: TlsSettings = TlsSettings()
    tracker: TrackerSettings = TrackerSettings()
    approval: ApprovalSettings = ApprovalSettings()
    retro: RetroSettings = RetroSettings()
    rfh: RfhSettings = RfhSettings()
    jobs: JobSettings = JobSettings()
    clock: ClockSettings = ClockSettings()
    retention: RetentionSettings = RetentionSettings()
    preflight: PreflightSettings = PreflightSettings()
    followthrough: FollowthroughSettings = FollowthroughSettings()
    kpi: KpiSettings = KpiSettings()
    ee: EESettings = EESettings()
    drill: DrillSettings = DrillSettings()
    customer_events: CustomerEventSettings = CustomerEventSettings()
    log: LogSettings = LogSettings()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init carries the YAML file (see load_settings); the environment overrides it.
        return (env_settings, init_settings)

    def resolved_policy_file(self) -> Path:
        """The policy in force: `policy_file`, or the built-in default when the default path
        does not exist (so `tier2gate serve` works from any directory)."""
        if self.policy_file == DEFAULT_POLICY_FILE and not self.policy_file.exists():
            return BUILTIN_POLICY_FILE
        return self.policy_file

    def secrets(self) -> list[str]:
        """Every configured secret value, for the log scrubber's last line of defence."""
        found: list[str] = []

        def collect(value: Any) -> None:
            if isinstance(value, SecretStr):
                if value.get_secret_value():
                    found.append(value.get_secret_value())
            elif isinstance(value, BaseModel):
                for name in type(value).model_fields:
                    collect(getattr(value, name))
            elif isinstance(value, list):
                for item in value:
                    collect(item)

        collect(self)
        return found + database_password(self.database_url)

    def masked(self) -> dict[str, Any]:
        """The effective settings with every secret replaced by a mask (unset stays null)."""

        def mask(value: Any) -> Any:
            if isinstance(value, SecretStr):
                return MASK if value.get_secret_value() else ""
            if isinstance(value, BaseModel):
                return {name: mask(getattr(value, name)) for name in type(value).model_fields}
            if isinstance(value, list):
                return [mask(item) for item in value]
            if isinstance(value, Path):
                return str(value)
            return value

        masked: dict[str, Any] = mask(self)
        masked["database_url"] = masked_database_url(self.database_url)
        return masked


def database_password(url: str) -> list[str]:
    """The password in a database URL, as written (percent-encoded) and as meant: in the
    user-info part or as a libpq `password=` query parameter. A plain `str` setting (the URL
    is not a secret as a whole), so it is named here for the scrubbers."""
    parts = urlsplit(url)
    written = [parts.netloc.rpartition("@")[0].partition(":")[2]] if "@" in parts.netloc else []
    written += [value for key, value in parse_qsl(parts.query, keep_blank_values=True)
                if key == "password"]
    return list(dict.fromkeys(form for value in written if value
                              for form in (value, unquote(value))))


def masked_database_url(url: str) -> str:
    """The URL with its password replaced by the mask; the rest (host, database) is what an
    operator checks."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user_info, _, host = netloc.rpartition("@")
        user, has_password, _password = user_info.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else netloc
    query = "&".join(
        f"{key}={MASK}" if key.lower() == "password" else item
        for item in parts.query.split("&") if item
        for key in (item.partition("=")[0],))
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # `sqlite:///x` would lose its empty host in a round trip
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def prune_cutoffs(retention: RetentionSettings, now_s: float
                  ) -> tuple[float, float, float | None]:
    """(deliveries, jobs, escalations or None) cutoffs in epoch seconds for `Store.prune`."""
    day_s = 86400.0
    escalations = (now_s - retention.escalations_days * day_s
                   if retention.escalations_days else None)
    return (now_s - retention.deliveries_days * day_s, now_s - retention.jobs_days * day_s,
            escalations)


def config_path(environ: dict[str, str] | None = None) -> tuple[Path, bool]:
    """The settings file and whether it was named explicitly (then it must exist)."""
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_ENV)
    return (Path(named), True) if named else (DEFAULT_CONFIG_FILE, False)


def environment_names() -> list[str]:
    """Every environment variable a setting can be given by, `TIER2GATE_CONFIG` first."""
    names = [CONFIG_ENV]
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, Section):
            names += [f"{ENV_PREFIX}{name}__{key}".upper() for key in section.model_fields]
        else:
            names.append(f"{ENV_PREFIX}{name}".upper())
    return names


def unknown_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per `TIER2GATE_*` variable that names no setting, with the nearest name.

    pydantic-settings ignores a name without the `__` between section and key
    (`TIER2GATE_SLACK_BOT_TOKEN`), so the daemon would run without that token and say nothing.
    """
    env = os.environ if environ is None else environ
    known = environment_names()
    problems = []
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper in OTHER_ENV_NAMES:
            continue
        # Compared without the common prefix, which would make every name look alike.
        close = difflib.get_close_matches(upper.removeprefix(ENV_PREFIX),
                                          [k.removeprefix(ENV_PREFIX) for k in known], n=1)
        hint = f" (did you mean {ENV_PREFIX}{close[0]}?)" if close else \
            " (settings are TIER2GATE_<SECTION>__<KEY>, see config/tier2gate.yaml)"
        problems.append(f"environment variable {name}: unknown setting{hint}")
    return problems


def load_settings(path: Path | None = None) -> Settings:
    """Read the YAML file (if any) and the environment; raise ConfigError naming key and line."""
    unknown = unknown_environment()
    if unknown:
        raise ConfigError("invalid settings:\n  " + "\n  ".join(unknown))
    explicit = path is not None
    if path is None:
        path, explicit = config_path()
    doc: YamlDoc | None = None
    data: dict[str, Any] = {}
    if path.exists() or explicit:
        try:
            doc = YamlDoc.from_path(path)
        except YamlError as exc:
            raise ConfigError(str(exc)) from None
        if doc.data is None:
            data = {}
        elif isinstance(doc.data, dict):
            data = doc.data
        else:
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, doc)) from None


def _describe(exc: ValidationError, doc: YamlDoc | None) -> str:
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [part for part in error["loc"] if isinstance(part, str | int)]
        what = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        env_name = ENV_PREFIX + "__".join(str(p) for p in loc).upper()
        if doc is not None and doc.has(loc[:1]) and env_name not in os.environ:
            line = doc.line_of(loc)
            lines.append(f"{doc.name} line {line}: {dotted(loc)}: {what}")
        elif env_name in os.environ:
            lines.append(f"environment variable {env_name}: {what}")
        else:
            lines.append(f"{dotted(loc)}: {what}")
    return "invalid settings:\n  " + "\n  ".join(lines)

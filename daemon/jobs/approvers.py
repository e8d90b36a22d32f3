"""Who may decide an approval request: the SMOC resolved from the PagerDuty schedule (email ->
Slack user), the configured backups (user ids, a user group) and a static override, all of them
those of the escalation's Tier 1 team (`jobs.routing`: the team's own, else the settings'). A
failed lookup never blocks the request: the message says so and the backups decide.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.domain.teams import DEFAULT_TEAM
from daemon.jobs.deps import Deps
from daemon.jobs.routing import Routing, routing
from daemon.logging import get_logger
from daemon.store.mapping import Loaded
from daemon.workers.retry import Permanent, Retry

log = get_logger("tier2gate.approval")


@dataclass(frozen=True)
class Deciders:
    """Who may decide an approval request right now."""

    ids: tuple[str, ...]  # chat user ids: the SMOC first when resolved, then the backups
    smoc_resolved: bool  # ids[0] is the SMOC; False: every id is a backup
    note: str = ""  # for the message: why there is no SMOC, and who decides instead
    team: str = DEFAULT_TEAM  # the Tier 1 team they approve for


class Approvers:
    """Who approves where (`routing`) and who may decide now (`deciders`), for the jobs that
    ask, decide, answer `/tier2 who` and tell people. Lookups that fail are logged and said
    in the `Deciders.note`; nothing here raises for them."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        # Per SMOC schedule: (the clock's monotonic reading, user id, note) of the last
        # successful lookup.
        self._smoc_cache: dict[str, tuple[float, str | None, str]] = {}

    def routing(self, team: str) -> Routing:
        """Who approves `team`'s escalations and where, under the policy in force."""
        return routing(self.deps.settings, self.deps.policy.current(), team)

    def routing_of(self, current: Loaded) -> Routing:
        """The routing of the escalation's Tier 1 team."""
        return self.routing(current.gate.team)

    async def smoc(self, route: Routing) -> tuple[str | None, str]:
        """(Slack user id of the team's SMOC or None, why there is none when it is None)."""
        if route.smoc_user_id:
            return route.smoc_user_id, ""
        schedule = route.smoc_schedule_id or ""
        cached = self._smoc_cache.get(schedule)
        kept_s = self.deps.settings.approval.smoc_cache_s
        if cached is not None and self.deps.clock.monotonic() - cached[0] < kept_s:
            return cached[1], cached[2]
        user_id, note = await self._resolve_smoc(schedule)
        if user_id is not None:  # a failed lookup is asked again next time, never remembered
            self._smoc_cache[schedule] = (self.deps.clock.monotonic(), user_id, note)
        return user_id, note

    async def _resolve_smoc(self, schedule: str) -> tuple[str | None, str]:
        """The SMOC, or None and why not (who decides instead is `deciders`' to say)."""
        if self.deps.pager is None or not schedule:
            return None, "No SMOC schedule is configured."
        try:
            email = await self.deps.pager.smoc_email(schedule)
            if email is None:
                return None, "Nobody is on call on the SMOC schedule."
            user_id = await self.deps.need_identity().user_id_for_email(email)
        except (Retry, Permanent) as exc:
            log.warning("approval.smoc_unresolved", error=str(exc))
            return None, f"The SMOC could not be resolved ({exc})."
        if user_id is None:
            return None, "The SMOC's email has no Slack account."
        return user_id, ""

    async def deciders(self, route: Routing) -> Deciders:
        """Who may decide a request of the routing's team now."""
        smoc, why = await self.smoc(route)
        backups = list(route.backup_user_ids)
        if route.backup_group_id:
            try:
                backups += await self.deps.need_identity().group_members(route.backup_group_id)
            except (Retry, Permanent) as exc:
                log.warning("approval.backup_group_unresolved", error=str(exc))
        ids = tuple(dict.fromkeys([smoc, *backups] if smoc else backups))
        if smoc:
            return Deciders(ids, smoc_resolved=True, team=route.team)
        # Never "backup approvers decide" when there are none: the message must not promise a
        # decision nobody can make.
        instead = ("Backup approvers decide." if ids else
                   "There is no backup approver either: nobody can approve this request.")
        return Deciders(ids, smoc_resolved=False, note=f"{why} {instead}", team=route.team)

    async def for_team(self, team: str) -> Deciders:
        """Who may decide a request of `team` now, under the policy in force."""
        return await self.deciders(self.routing(team))

    async def approver_ids(self) -> tuple[str, ...]:
        """Who may decide now for the implicit team, SMOC first (the people told when a failure
        belongs to no escalation and nothing else can be used)."""
        return (await self.for_team(DEFAULT_TEAM)).ids


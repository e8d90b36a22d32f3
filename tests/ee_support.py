"""What the Escalation Engineer tests share: a roster file and a policy that involves the EEs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.harness import REPO

EE_CHANNEL = "C0EESUPPORT"


def engineer(user_id: str, name: str) -> dict[str, str]:
    return {"slack_user_id": user_id, "name": name}


def rotation(start: str, end: str, *engineers: dict[str, str]) -> dict[str, Any]:
    return {"from": start, "to": end, "engineers": list(engineers)}


def roster_file(path: Path, rotations: list[dict[str, Any]], handoff_time: str = "09:00"
                ) -> Path:
    """Write a roster (UTC dates) to `path`, atomically: a running daemon re-reads it."""
    draft = path.with_suffix(".new")
    draft.write_text(yaml.safe_dump({"timezone": "UTC", "handoff_time": handoff_time,
                                     "rotations": rotations}), encoding="utf-8")
    draft.replace(path)
    return path


def policy_with_ee(path: Path, *, emergency_wait_minutes: float | None) -> Path:
    """The shipped policy, with the request-for-help rule offered to the EEs and, when given,
    the emergency rules waiting that long for one."""
    policy = yaml.safe_load((REPO / "config" / "policy.yaml").read_text(encoding="utf-8"))
    for rule in policy["rules"]:
        if rule["outcome"] == "rfh":
            rule["ee"] = {}
        if rule["outcome"] == "emergency" and emergency_wait_minutes is not None:
            rule["ee"] = {"wait_minutes": emergency_wait_minutes}
    path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    return path

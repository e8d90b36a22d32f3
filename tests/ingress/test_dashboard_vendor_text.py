"""Vendor error text reaches the dashboard, the API and the jobs table only scrubbed and cut.

Seen: a GitLab error echoing the tracker token base64-encoded reached the dashboard.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

from daemon.integrations.failures import MAX_ERROR_CHARS
from daemon.standins.faults import Fault
from daemon.store import JobState
from tests.world import TRACKER_TOKEN, incident, world

ENCODED = {
    "base64": base64.b64encode(TRACKER_TOKEN.encode()).decode(),
    "basic": base64.b64encode(f"oauth2:{TRACKER_TOKEN}".encode()).decode(),
    "url": quote(TRACKER_TOKEN, safe="").replace("-", "%2D"),
}
NEEDLES = ("RECOGNISABLE", "UkVDT0dOSVNBQkxF", "JFQ09HTklTQUJMR", "SRUNPR05JU0FCTE")


async def test_a_gitlab_error_echoing_the_token_base64_encoded_never_reaches_the_dashboard(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        echo = " ".join(f"{name}={form}" for name, form in ENCODED.items())
        w.tracker.plan.add(Fault(status=401, body=json.dumps(
            {"message": f"401 Unauthorized: token {echo} " + "y" * 5000})))
        # An S3 is a request for help: its issue is the first thing GitLab is asked for.
        assert (await w.daemon.incident_io(incident(severity="SEV3"))).status == 202
        await w.daemon.settle()
        [dead] = [j for j in await w.daemon.store.list_jobs(JobState.DEAD)
                  if j.kind == "rfh_issue"]
        assert "GitLab" in dead.last_error and "HTTP 401" in dead.last_error
        assert len(dead.last_error) <= MAX_ERROR_CHARS
        [row] = await w.daemon.escalations()
        assert row.attention  # the problem is shown, with GitLab's (scrubbed) words
        timeline = json.dumps([e.details for e in await w.daemon.store.timeline(row.id)])
        pages = {path: await (await w.daemon.admin.get(path)).text()
                 for path in ("/", "/api/escalations")}
        assert "401 Unauthorized" in pages["/api/escalations"]
        for where, text in {"job": dead.last_error, "timeline": timeline, **pages}.items():
            assert not [n for n in NEEDLES if n in text], (where, text)

"""`tier2gate report` loads only the store and the reporting modules: the daemon's HTTP stack,
jobs and vendors were most of a year's report in start-up time (bench/README.md)."""

from __future__ import annotations

import json
import subprocess
import sys

# What `cmd_report` imports, in a fresh interpreter, then which heavy modules came with it.
_PROBE = """
import json, sys
import daemon.cli
from daemon.policy_source import load_policy
from daemon.reporting import load_report, render_text
from daemon.reporting.ee import load_ee_layer
from daemon.store import open_store
print(json.dumps(sorted(name for name in sys.modules
                        if name.split(".")[0] in ("aiohttp", "jinja2", "uvloop")
                        or name.startswith(("daemon.jobs", "daemon.integrations.",
                                            "daemon.app", "daemon.ingress")))))
"""


def test_the_report_path_imports_no_http_stack_jobs_or_vendors() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          check=True, timeout=60)
    assert json.loads(done.stdout) == []

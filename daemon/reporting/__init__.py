"""Escalation analytics: `tier2gate report` (text or JSON) and the dashboard at `GET /`.

One computation (`load_report`: aggregates in SQL, assembled by the code that also defines
each figure over rows in memory, `build_report`) feeds both, so a number on the page is the
number in the terminal. The dashboard handlers live in `daemon.reporting.dashboard`.
"""

from daemon.reporting.report import (
    PAGE_GOAL_PERCENT,
    Report,
    build_report,
    load_report,
    parse_since,
    percentile,
)
from daemon.reporting.text import render_text

__all__ = [
    "PAGE_GOAL_PERCENT", "Report", "build_report", "load_report", "parse_since", "percentile",
    "render_text",
]

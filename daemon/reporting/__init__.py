"""Escalation analytics: `tier2gate report` (text or JSON) and the dashboard at `GET /`.

One pure computation (`build_report`) feeds both, so a number on the page is the number in the
terminal. The dashboard handlers live in `daemon.reporting.dashboard`.
"""

from daemon.reporting.report import (
    FETCH_LIMIT,
    PAGE_GOAL_PERCENT,
    Report,
    TooManyEscalations,
    build_report,
    fetch,
    load_report,
    parse_since,
    percentile,
)
from daemon.reporting.text import render_text

__all__ = [
    "FETCH_LIMIT", "PAGE_GOAL_PERCENT", "Report", "TooManyEscalations", "build_report", "fetch",
    "load_report", "parse_since", "percentile", "render_text",
]

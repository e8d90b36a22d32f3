"""Local stand-ins that speak the Slack Web API, PagerDuty REST/Events (over TLS), GitLab,
GitHub, Jira and incident.io: `tier2gate demo` runs on them, and so do the tests and benches.

Each records every request so a caller can say "exactly one page", and takes a `FaultPlan` to
play a vendor outage (500s, 429 with Retry-After, hangs, connection resets).
"""

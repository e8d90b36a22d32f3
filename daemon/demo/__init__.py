"""`tier2gate demo`: the whole flow on this machine, with no accounts.

The daemon runs on a fresh SQLite file beside local stand-ins for Slack, PagerDuty (TLS) and
GitLab; a scripted Saturday-night story is played through the real, signed webhook endpoints.
"""

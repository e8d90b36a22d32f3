"""Inbound vendor data: one module per source (`pagerduty`, `incident_io`, `desks`, `slack`).

Each holds its source's parser from verified bytes to typed values, the job kind that processes
its stored deliveries, and reports a body it cannot read with the one `fields.PayloadError`.
Imports nothing of ours but `daemon.domain` (`lint-imports`): the HTTP edge (`ingress`) parses
with it once and stores, and the jobs read the stored delivery back with the same parser.
"""

"""Inbound webhooks: verify signatures on raw bytes, normalise vendor payloads to `Escalation`."""

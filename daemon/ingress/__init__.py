"""Inbound HTTP: content type, limits, signatures on raw bytes, replay windows and status codes;
the bodies are parsed by `daemon.sources`."""

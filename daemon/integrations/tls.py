"""TLS trust for every outbound call: the system CAs plus `tls.ca_file`.

Added, not replacing: a corporate TLS-inspecting proxy's CA (or a test server's) must not make
the real vendors untrusted.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from daemon.settings import ConfigError


def trusted_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except OSError as exc:  # ssl.SSLError is an OSError too
            why = exc.strerror or type(exc).__name__
            raise ConfigError(f"tls.ca_file {ca_file}: cannot load CA certificates ({why})"
                              ) from None
    return context

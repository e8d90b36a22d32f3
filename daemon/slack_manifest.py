"""The Slack app manifest, filled in with the daemon's public URL (`tier2gate slack-manifest`).

The template ships in the package (`defaults/slack-manifest.yaml`, also kept verbatim at
`deploy/slack/manifest.yaml` for people reading the repository), so the command works from an
installed wheel where `deploy/` does not exist.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

TEMPLATE = Path(__file__).resolve().parent / "defaults" / "slack-manifest.yaml"
PLACEHOLDER = "https://HOST"


_SAFE_PATH = re.compile(r"[A-Za-z0-9._~/-]*")


class ManifestError(ValueError):
    """The public URL cannot be given to Slack; the message says why."""


def public_base(url: str) -> str:
    """`url` checked and without a trailing slash, ready to have `/slack/...` appended.

    Slack sends interactions and slash commands only to https URLs; anything after the host
    other than a path prefix (a reverse proxy's mount point) would end up inside every URL.
    """
    parts = urlsplit(url.strip())
    if parts.scheme != "https":
        raise ManifestError(f"must start with https:// (Slack calls only HTTPS URLs), got {url!r}")
    if not parts.hostname:
        raise ManifestError(f"has no host name: {url!r}")
    if parts.username or parts.password:
        raise ManifestError("must not contain a user name or password")
    if parts.query or parts.fragment:
        raise ManifestError("must not have a ?query or #fragment: give the base URL only")
    if parts.hostname == "host":
        raise ManifestError("replace HOST with the public name of your tier2gate")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise ManifestError(f"has a port that is not 1-65535: {url!r}") from None
    if not _SAFE_PATH.fullmatch(parts.path):
        # The URL is pasted into YAML and into Slack's settings: a space, `:` or `[` would
        # break the one or make an address Slack cannot call.
        raise ManifestError("the path may hold only letters, digits and - . _ ~ / "
                            f"(a reverse proxy's mount point): {parts.path!r}")
    return f"https://{parts.netloc}{parts.path.rstrip('/')}"


def render_manifest(public_url: str) -> str:
    return TEMPLATE.read_text(encoding="utf-8").replace(PLACEHOLDER, public_base(public_url))

"""Secrets are masked in every form a vendor may echo them in, and the database password is
masked wherever the settings are shown."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

import pytest

from daemon.integrations.failures import REDACTED, clean, http_failure, scrub
from daemon.logging import SecretScrubber
from daemon.settings import MASK, Settings, database_password, masked_database_url

TOKEN = "glpat-RECOGNISABLE/tracker+token"  # `/` and `+` differ between the base64 alphabets
B64 = base64.b64encode


def forms(secret: str) -> dict[str, str]:
    raw = secret.encode()
    return {
        "raw": secret,
        "url": quote(secret, safe=""),
        "url lower hex": quote(secret, safe="").replace("%2F", "%2f").replace("%2B", "%2b"),
        "form": quote_plus(secret + " x"),
        "base64": B64(raw).decode(),
        "base64 basic credential": B64(b"bot@example.com:" + raw).decode(),
        "base64 offset 1": B64(b"a" + raw + b"z").decode(),
        "base64 offset 2": B64(b"ab" + raw).decode(),
        "base64 url-safe": base64.urlsafe_b64encode(b"x:" + raw).decode(),
    }


@pytest.mark.parametrize("form", list(forms(TOKEN)))
def test_every_encoded_form_of_a_secret_is_masked(form: str) -> None:
    echoed = forms(TOKEN)[form]
    text = scrub(f'{{"message": "401 Unauthorized: {echoed}"}}', [TOKEN])
    assert REDACTED in text
    assert "RECOGNISABLE" not in text and "UkVDT0dOSVNBQkxF" not in text, text
    # what is left of an encoding next to the mask reveals a few bits, never a whole character
    for core in ("SVNBQkxF", "Tk1TQUJM", "T0dOSVNB"):
        assert core not in text


def test_ordinary_text_and_short_values_stay() -> None:
    assert scrub("nothing to hide here", [TOKEN, "abc"]) == "nothing to hide here"
    assert scrub("abc abc", ["abc"]) == "abc abc"  # shorter than MIN_SECRET_CHARS


def test_clean_masks_before_it_cuts() -> None:
    echoed = "x" * 290 + B64(TOKEN.encode()).decode()
    text = clean(echoed, [TOKEN])
    assert len(text) == 300 and "UkVD" not in text


def test_http_failure_masks_a_base64_echo() -> None:
    detail = f"invalid token {B64(TOKEN.encode()).decode()}"
    failure = http_failure("GitLab create issue", 401, detail=detail, secrets=[TOKEN],
                           now_s=0.0)
    assert "RECOGNISABLE" not in str(failure) and "UkVDT0dOSVNBQkxF" not in str(failure)
    assert "HTTP 401" in str(failure)


def test_log_scrubber_masks_encoded_forms() -> None:
    scrubber = SecretScrubber([TOKEN])
    event = scrubber(None, "error", {"event": "x", "error": quote(TOKEN, safe=""),
                                     "nested": [B64(TOKEN.encode()).decode()]})
    assert "RECOGNISABLE" not in str(event) and "UkVD" not in str(event)


URL = "postgresql://tier2gate:s3cret%2Fpw@db.example:5432/tier2gate?sslmode=require"


def test_database_password_is_a_secret_in_both_spellings() -> None:
    assert database_password(URL) == ["s3cret%2Fpw", "s3cret/pw"]
    assert database_password("postgresql://db/t?user=u&password=hunter2x") == ["hunter2x"]
    assert database_password("sqlite:///./var/tier2gate.db") == []
    assert "s3cret/pw" in Settings(database_url=URL).secrets()


def test_database_password_is_masked_in_check_config_output() -> None:
    shown = Settings(database_url=URL).masked()["database_url"]
    assert shown == f"postgresql://tier2gate:{MASK}@db.example:5432/tier2gate?sslmode=require"
    assert masked_database_url("postgresql://db/t?password=hunter2x&user=u") == \
        f"postgresql://db/t?password={MASK}&user=u"
    assert masked_database_url("sqlite:///./var/tier2gate.db") == "sqlite:///./var/tier2gate.db"
    assert masked_database_url("postgresql://u@h/d") == "postgresql://u@h/d"


def test_log_lines_mask_the_database_password() -> None:
    scrubber = SecretScrubber(Settings(database_url=URL).secrets())
    event = scrubber(None, "error", {"event": "serve.store_unavailable", "url": URL,
                                     "said": "password s3cret/pw rejected"})
    assert "s3cret" not in str(event)

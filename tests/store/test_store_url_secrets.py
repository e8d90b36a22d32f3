"""Errors about the database never quote its password (it lives in `database_url`)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from daemon.store import StoreUnavailable, open_store
from tests.support import POSTGRES_URL, postgres_or_skip

PASSWORD = "Hunter2-RECOGNISABLE"


@pytest.mark.postgres
@pytest.mark.parametrize(("user", "port", "query", "said"), [
    ("no_such_role_t2g", "", "", "InvalidAuthorizationSpecificationError"),
    ("u", "notaport", "", "ValueError"),
    ("u", "", f"sslmode={PASSWORD}", "ClientConfigurationError"),
])
async def test_a_refused_or_unparsable_postgres_url_is_reported_without_its_password(
    user: str, port: str, query: str, said: str,
) -> None:
    postgres_or_skip()
    parts = urlsplit(POSTGRES_URL)
    netloc = f"{user}:{PASSWORD}@{parts.hostname}:{port or parts.port or 5432}"
    store = open_store(parts._replace(netloc=netloc, query=query).geturl())
    with pytest.raises(StoreUnavailable) as raised:
        await store.open()
    assert said in str(raised.value) and "database_url" in str(raised.value)
    assert "RECOGNISABLE" not in str(raised.value), raised.value

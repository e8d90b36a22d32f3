"""What the multi-process PostgreSQL tests share: a schema of their own per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.support import postgres_or_skip


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    url = postgres_or_skip()
    name = f"t2g_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        await admin.execute(f'DROP SCHEMA "{name}" CASCADE')
        await admin.close()

"""Repositories for tests: the in-memory fake, SQLite (a fresh file) and PostgreSQL (a fresh schema).

PostgreSQL is the local server (127.0.0.1:5432, trust auth, database ``test``; override with
CHARGEFLOW_TEST_POSTGRES_URL). Each test gets its own schema, dropped afterwards, so runs never meet.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from chargeflow.billing.ports import BillingStore
from chargeflow.csm.ports import CsmRepository
from chargeflow.runtime.app import open_stores
from chargeflow.store.billing_memory import MemoryBillingStore
from chargeflow.store.database import make_engine, migrate
from chargeflow.store.memory import MemoryRepository
from chargeflow.store.sql import SqlRepository

POSTGRES_URL = os.environ.get(
    "CHARGEFLOW_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["memory", "sqlite", "postgresql"]


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_async_engine(POSTGRES_URL)
    try:
        async with admin.begin() as c:
            await c.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OSError as exc:
        await admin.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    try:
        yield schema
    finally:
        async with admin.begin() as c:
            await c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


@asynccontextmanager
async def open_repository(backend: str, tmp_path: Path) -> AsyncIterator[CsmRepository]:
    if backend == "memory":
        yield MemoryRepository()
        return
    if backend == "sqlite":
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        await migrate(engine)
        async with SqlRepository.open(engine) as repository:
            yield repository
        await engine.dispose()
        return
    async with postgres_schema() as schema:
        engine = make_engine(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
        await migrate(engine)
        async with SqlRepository.open(engine) as repository:
            yield repository
        await engine.dispose()


@asynccontextmanager
async def open_billing_stores(
    backend: str, tmp_path: Path
) -> AsyncIterator[tuple[CsmRepository, BillingStore]]:
    """The CSM's repository and billing's store on one database, as ``chargeflow serve`` opens them."""
    if backend == "memory":
        repository = MemoryRepository()
        yield repository, MemoryBillingStore(repository)
        return
    if backend == "sqlite":
        async with open_stores(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}") as stores:
            yield stores.repository, stores.billing
        return
    async with (
        postgres_schema() as schema,
        open_stores(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}}) as stores,
    ):
        yield stores.repository, stores.billing

"""The flow history on SQLite and PostgreSQL: samples written without waiting, ranges averaged into
buckets by the database, old samples pruned, the recent hours back after a restart, and migration 0004
giving the tables' schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from chargeflow.runtime.app import Stores, open_stores
from chargeflow.store.database import make_engine, migrate
from chargeflow.store.flows import FlowStore
from chargeflow.store.tables import metadata
from chargeflow.web.live import FlowHistory, FlowSample
from tests.databases import POSTGRES_URL, postgres_schema

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def sample(i: int, reason: str | None = "grid_import_limit") -> FlowSample:
    """The ``i``-th 10 s step: every flow a simple function of ``i``, so averages are easy to check."""
    at, granted = T0 + timedelta(seconds=10 * i), None if i % 2 else 1_000.0 * i
    return FlowSample(at, 100.0 * i, 5_000, 2_000, -500, 100.0 * i, granted, reason)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def database(backend: str, tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, object]]]:
    """One database's URL and engine options, the same across the stores opened on it."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'flows.db'}", {}
        return
    async with postgres_schema() as schema:
        yield POSTGRES_URL, {"connect_args": {"server_settings": {"search_path": schema}}}


@pytest.fixture
async def stores(backend: str, tmp_path: Path) -> AsyncIterator[Stores]:
    async with database(backend, tmp_path) as (url, options), open_stores(url, **options) as opened:
        yield opened


async def test_a_range_comes_back_averaged_into_at_most_max_points_buckets(stores: Stores) -> None:
    flows = stores.flows
    for i in range(60):  # 10 minutes of 10 s steps; the last 30 under another limit
        flows.add(sample(i, "grid_import_limit" if i < 30 else "fuse:main:L1"))
    await flows.flush()
    every = await flows.range(T0, T0 + timedelta(minutes=10), 1000)
    assert every == [sample(i, "grid_import_limit" if i < 30 else "fuse:main:L1") for i in range(60)]

    buckets = await flows.range(T0, T0 + timedelta(minutes=10), 6)  # 100 s: ten steps each
    assert len(buckets) == 6
    first, fourth = buckets[0], buckets[3]
    assert first.at == T0 + timedelta(seconds=45)  # the mean time of steps 0..9
    assert first.grid_w == pytest.approx(450.0)  # the mean of 0, 100, …, 900
    assert (first.building_w, first.pv_w, first.ess_w) == (5_000, 2_000, -500)
    assert first.granted_w == pytest.approx(4_000.0)  # the steps with a grant: 0, 2000, …, 8000
    assert first.limit_reason == "grid_import_limit"
    assert fourth.limit_reason == "fuse:main:L1"
    assert buckets[2].limit_reason == "grid_import_limit"

    straddling = await flows.range(T0 + timedelta(seconds=250), T0 + timedelta(seconds=350), 1)
    assert straddling[0].limit_reason is None  # two limits took turns in that bucket
    assert straddling[0].grid_w == pytest.approx(2_950.0)  # steps 25..34, the end excluded

    week = await flows.range(T0 - timedelta(days=7), T0 + timedelta(minutes=10), 720)
    assert len(week) == 1  # 7 days in 14-minute buckets: all ten minutes in one
    assert week[0].grid_w == pytest.approx(2_950.0)
    assert await flows.range(T0 + timedelta(hours=1), T0 + timedelta(hours=2), 10) == []


async def test_prune_deletes_the_samples_before_a_time_and_keeps_the_rest(stores: Stores) -> None:
    flows = stores.flows
    for i in range(10):
        flows.add(sample(i))
    await flows.flush()
    assert await flows.prune(T0 + timedelta(seconds=50)) == 5  # steps 0..4; step 5 is at the boundary
    kept = await flows.range(T0 - timedelta(hours=1), T0 + timedelta(hours=1), 1000)
    assert [s.at for s in kept] == [sample(i).at for i in range(5, 10)]


async def test_samples_older_than_the_store_keeps_go_at_the_first_sample_and_then_once_a_day(
    stores: Stores,
) -> None:
    flows = FlowStore(stores.flows._engine, stores.flows._writer, keep=timedelta(days=2))
    everything = (T0 - timedelta(days=10), T0 + timedelta(days=10), 10_000)

    async def add(at: datetime) -> list[datetime]:
        flows.add(FlowSample(at, 1, 1, 0, 0, 0, None))
        await flows.flush()
        return [s.at for s in await flows.range(*everything)]

    assert await add(T0 - timedelta(days=5)) == [T0 - timedelta(days=5)]  # pruned before T0 - 7 d
    assert len(await add(T0 - timedelta(days=4, hours=12))) == 2  # within a day: no prune
    assert await add(T0 - timedelta(days=1)) == [T0 - timedelta(days=1)]  # a day on: before T0 - 3 d
    assert len(await add(T0 - timedelta(hours=1))) == 2
    assert await add(T0) == [T0 - timedelta(days=1), T0 - timedelta(hours=1), T0]


async def test_the_recent_history_survives_a_restart(backend: str, tmp_path: Path) -> None:
    now = T0 + timedelta(hours=4)
    async with database(backend, tmp_path) as (url, options):
        async with open_stores(url, **options) as stores:
            history = FlowHistory(store=stores.flows)
            for i in range(0, 4 * 360, 6):  # four hours, a sample a minute; nobody waits for the disk
                history.record(sample(i))
            assert len(history.samples()) == 181  # the last 3 h in memory
        # closed: the writer committed what it was handed before it stopped
        async with open_stores(url, **options) as stores:
            restarted = FlowHistory(store=stores.flows)
            assert restarted.samples() == []
            assert await restarted.load_recent(now) == 180  # 3 h before ``now``: the oldest one has left
            assert restarted.samples() == history.samples()[1:]
            today = await restarted.between(T0, now, 24)  # 10-minute buckets
            assert len(today) == 24
            assert today[0].grid_w == pytest.approx(100.0 * 27)  # the mean of steps 0, 6, …, 54


def _schema_differences(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def test_migration_0004_creates_the_flow_samples_table_as_the_tables_describe_it(
    backend: str, tmp_path: Path
) -> None:
    async with database(backend, tmp_path) as (url, options):
        engine = make_engine(url, **options)
        try:
            await migrate(engine)
            async with engine.connect() as connection:
                assert await connection.run_sync(_schema_differences) == []
                indexes = await connection.run_sync(lambda c: inspect(c).get_indexes("flow_samples"))
            assert [(i["name"], i["column_names"]) for i in indexes] == [("ix_flow_samples_at", ["at"])]
        finally:
            await engine.dispose()

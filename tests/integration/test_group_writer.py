"""The group writer: batches commit together, a failing write fails alone, sessions stay coherent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from chargeflow.csm import transactions
from chargeflow.csm.model import (
    ChargingNeeds,
    MeterSample,
    StartRequest,
    StationRecord,
    StopRequest,
    TransactionRecord,
)
from chargeflow.store.bulk import BulkWriter
from chargeflow.store.database import make_engine, migrate
from chargeflow.store.sql import SqlRepository
from chargeflow.store.tables import metadata, meter_values, stations
from chargeflow.store.writer import GroupWriter, WriteContext
from tests.databases import POSTGRES_URL, postgres_schema

T0 = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, dict[str, object]]]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", {}
        return
    async with postgres_schema() as schema:
        yield POSTGRES_URL, {"connect_args": {"server_settings": {"search_path": schema}}}


async def test_one_failing_write_fails_alone_and_the_rest_commit(
    engine_url: tuple[str, dict[str, object]],
) -> None:
    url, options = engine_url
    engine = make_engine(url, **options)
    await migrate(engine)
    async with GroupWriter.open(engine) as writer:

        def insert(name: str) -> Callable[[WriteContext], str]:
            def write(ctx: WriteContext) -> str:
                ctx.connection.execute(stations.insert().values(id=name))
                return name

            return write

        def broken(ctx: WriteContext) -> None:
            ctx.connection.execute(stations.insert().values(id="dup"))
            ctx.connection.execute(stations.insert().values(id="dup"))

        results = await asyncio.gather(
            *(writer.submit(insert(f"S{n}")) for n in range(30)),
            writer.submit(broken),
            return_exceptions=True,
        )
        batches = writer.batches
    assert list(results[:30]) == [f"S{n}" for n in range(30)]
    assert isinstance(results[30], Exception)
    async with engine.connect() as c:
        stored = {r.id for r in await c.execute(select(stations.c.id))}
    await engine.dispose()
    assert stored == {f"S{n}" for n in range(30)}
    assert batches < 31, "writes submitted together share a transaction"


async def started(repo: SqlRepository, station: str) -> TransactionRecord:
    await repo.save_station(StationRecord(station))
    start = StartRequest(station, 1, "T", 0, T0)
    return (await repo.start_transaction(start, transactions.from_start(start))).transaction


async def reading(repo: SqlRepository, tx_id: int, wh: int) -> None:
    sample = (MeterSample(T0 + timedelta(seconds=wh), str(wh)),)
    await repo.add_meter_values("S", 1, tx_id, sample, lambda r: transactions.apply_meter_values(r, sample))


async def test_concurrent_meter_values_of_one_session_keep_the_highest_reading(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    await migrate(engine)
    async with SqlRepository.open(engine) as repo:
        tx = await started(repo, "S")
        await asyncio.gather(*(reading(repo, tx.id, wh) for wh in (500, 300, 900, 100)))
        stored = await repo.get_transaction(tx.id)
        assert stored == replace(tx, meter_stop_wh=900)
        assert len(await repo.meter_values(tx.id)) == 4
    await engine.dispose()


async def test_readings_and_whole_row_changes_in_one_batch_leave_the_latest_row(
    engine_url: tuple[str, dict[str, object]],
) -> None:
    """A reading alone updates one column; a whole-row change in the same batch must not be undone by it,
    nor undo it, in whichever order the two come."""
    url, options = engine_url
    engine = make_engine(url, **options)
    await migrate(engine)
    async with SqlRepository.open(engine) as repo:
        tx = await started(repo, "S")
        await started(repo, "S2")

        departure = T0 + timedelta(hours=8)
        needs = ChargingNeeds("S", 1, departure, 20_000)
        # Another session's whole row first (so whole rows are flushed before single readings), then a
        # reading, this session's whole row, and a newer reading: the newer one must be what stays.
        await asyncio.gather(
            repo.set_charging_needs(ChargingNeeds("S2", 1, departure, 1_000)),
            reading(repo, tx.id, 100),
            repo.set_charging_needs(needs),
            reading(repo, tx.id, 200),
        )
        mid = await repo.get_transaction(tx.id)
        assert mid == replace(tx, meter_stop_wh=200, departure_time=departure, energy_need_wh=20_000)

        stop = StopRequest("S", tx.id, 900, T0 + timedelta(hours=1), "Local")
        # reading, then the stop (whole row), then a late reading after the stop (ignored).
        await asyncio.gather(
            reading(repo, tx.id, 300),
            repo.stop_transaction(stop, lambda r: transactions.apply_stop(r, stop)),
            reading(repo, tx.id, 400),
        )
        ended = await repo.get_transaction(tx.id)
        assert ended is not None
        assert (ended.meter_stop_wh, ended.stopped_at, ended.departure_time) == (
            900,
            stop.timestamp,
            departure,
        )
    await engine.dispose()


@pytest.mark.parametrize("count", [1, 3, 200])
def test_bulk_fast_path_stores_what_sqlalchemy_reads_back(tmp_path: Path, count: int) -> None:
    # 200 rows: multi-row INSERTs of 64, 64, 64 and 8 rows; three samples share each timestamp.
    engine = create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    metadata.create_all(engine)
    at = datetime(2026, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)
    rows = [
        {
            "station_id": "S",
            "evse_id": 1,
            "transaction_id": None,
            "timestamp": at + timedelta(seconds=n // 3),
            "value": str(n),
            "measurand": "Energy.Active.Import.Register",
            "phase": None,
            "unit": "Wh",
            "location": None,
            "context": None,
            "signed": None,
        }
        for n in range(count)
    ]
    bulk = BulkWriter(engine.dialect)
    with engine.begin() as c:
        bulk.execute(c, meter_values.insert(), rows)
    with engine.connect() as c:
        stored = c.execute(
            select(meter_values.c.timestamp, meter_values.c.value).order_by(meter_values.c.id)
        ).all()
    engine.dispose()
    assert [(r.timestamp, r.value) for r in stored] == [(row["timestamp"], row["value"]) for row in rows]
    assert bulk.compiled_statements == 1

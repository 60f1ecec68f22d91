"""The billing store's contract, held by the in-memory fake, SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from chargeflow.billing.attribution import Shares, Source
from chargeflow.billing.ports import BillingStore, CdrRecord, SessionTariff
from chargeflow.billing.tariff import Price
from chargeflow.csm.model import StartRequest, StopRequest
from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.transactions import apply_stop, from_start
from tests.databases import BACKENDS, open_billing_stores

T0 = datetime(2026, 11, 2, 8, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[CsmRepository, BillingStore]]:
    async with open_billing_stores(request.param, tmp_path) as both:
        yield both


async def _session(repository: CsmRepository, minutes: int, stop: bool = True) -> str:
    start = StartRequest("CP", 1, "TAG", 100 * minutes, T0 + timedelta(minutes=minutes))
    tx = (await repository.start_transaction(start, from_start(start))).transaction
    if stop:
        end = StopRequest("CP", tx.id, 100 * minutes + 500, start.timestamp + timedelta(minutes=30))
        await repository.stop_transaction(end, lambda t: apply_stop(t, end))
    return str(tx.id)


def _cdr(session_id: str, start: datetime) -> CdrRecord:
    return CdrRecord(
        session_id, session_id, "CP", "TAG", start, start + timedelta(minutes=30), "EUR", 500,
        Price(Decimal("0.1234567"), None), "no_key", None, {"id": session_id, "total_energy": 0.5},
    )  # fmt: skip


async def test_cdrs_are_stored_once_and_listed_by_start(stores: tuple[CsmRepository, BillingStore]) -> None:
    repository, store = stores
    first, second, running = (
        await _session(repository, 0),
        await _session(repository, 600),
        await _session(repository, 1200, stop=False),
    )
    assert list(await store.finished_without_cdr()) == [first, second]
    assert await store.save_cdr(_cdr(first, T0))
    assert not await store.save_cdr(_cdr(first, T0))  # once per session
    assert await store.save_cdr(_cdr(second, T0 + timedelta(hours=10)))
    assert list(await store.finished_without_cdr()) == []
    stored = await store.get_cdr(first)
    assert stored == _cdr(first, T0)  # money exact, the VAT unknown stays unknown, the JSON as given
    assert [c.id for c in await store.list_cdrs(T0 + timedelta(hours=1))] == [second]
    assert [c.id for c in await store.list_cdrs(None, T0 + timedelta(hours=1))] == [first]
    assert await store.get_cdr(running) is None
    assert await store.finished_session(running) is None
    finished = await store.finished_session(first)
    assert finished is not None
    assert [s.energy_wh for s in finished.samples] == [0, 500]


async def test_session_tariffs_keep_the_first_choice_and_shares_add_up(
    stores: tuple[CsmRepository, BillingStore],
) -> None:
    repository, store = stores
    a, b = await _session(repository, 0, stop=False), await _session(repository, 5, stop=False)
    assert await store.session_tariff(a) is None
    await store.save_session_tariff(a, SessionTariff({"id": "x", "currency": "EUR"}), T0)
    await store.save_session_tariff(a, SessionTariff(None), T0)
    await store.save_session_tariff(b, SessionTariff(None), T0)
    assert await store.session_tariff(a) == SessionTariff({"id": "x", "currency": "EUR"})
    assert await store.session_tariff(b) == SessionTariff(None)
    step = Shares({Source.PV: 3, Source.BATTERY: 2, Source.GRID: 1})
    await store.add_shares({a: step, b: step})
    await store.add_shares({a: step})
    totals = await store.shares()
    assert (totals[a].of(Source.PV), totals[a].of(Source.GRID), totals[b].total_wh) == (6, 2, 6)
    await store.replace_api_tariffs([{"tariff": {"id": "1"}}, {"tariff": {"id": "2"}}])
    await store.replace_api_tariffs([{"tariff": {"id": "3"}}])
    assert list(await store.api_tariffs()) == [{"tariff": {"id": "3"}}]
    start = await store.session_start(a)
    assert start is not None
    assert (start.evse_id, start.id_token, start.start) == ("CP", "TAG", T0)

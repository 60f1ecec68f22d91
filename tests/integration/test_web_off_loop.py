"""Issue 13, item 8: the owner's password check, the driver's and the dashboard's cost estimates and the
reports run on worker threads, not on the event loop that serves every station."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.v16 import call

import chargeflow.billing.service
import chargeflow.web.auth
import chargeflow.web.billing_api
import chargeflow.web.driver
import chargeflow.web.ui
from chargeflow.csm.ports import CsmRepository
from chargeflow.runtime.app import CsmNode
from chargeflow.web.auth import HASHING_AT_ONCE, OwnerAuth
from tests.databases import open_repository
from tests.integration.conftest import port_of
from tests.integration.stations import Station16, iso, open_ws, running
from tests.integration.test_billing import AUTH as BILLING_AUTH
from tests.integration.test_billing import Billed, billed, charge_16  # noqa: F401 (billed: a fixture)
from tests.integration.test_web_ui import (  # noqa: F401 (client, links, view: fixtures)
    NOW,
    FakeView,
    _login,
    client,
    links,
    view,
)


@pytest.fixture
async def repository(tmp_path: Path) -> AsyncIterator[CsmRepository]:
    """One store is enough here (the conftest runs each test on every store): the store is not the point."""
    async with open_repository("memory", tmp_path) as repo:
        yield repo


class Threads:
    """Wraps a function to record the thread each call ran on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
        self.ran_on: list[int] = []
        real: Callable[..., Any] = getattr(module, name)

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.ran_on.append(threading.get_ident())
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, recorded)

    def off_the_loop(self) -> bool:
        return bool(self.ran_on) and threading.get_ident() not in self.ran_on


async def test_the_owner_login_checks_the_password_on_a_worker_thread(
    client: httpx.AsyncClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hashing = Threads(monkeypatch, chargeflow.web.auth, "verify_password")
    answer = await _login(client)
    assert answer.headers["location"] == "/dashboard"
    assert hashing.off_the_loop()


async def test_password_checks_run_a_few_at_a_time_and_a_locked_out_guess_is_not_hashed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    import time

    running_now, most = 0, 0
    lock = threading.Lock()

    def slow_verify(password: str, stored: str) -> bool:
        nonlocal running_now, most
        with lock:
            running_now += 1
            most = max(most, running_now)
        time.sleep(0.05)
        with lock:
            running_now -= 1
        return False

    monkeypatch.setattr(chargeflow.web.auth, "verify_password", slow_verify)
    auth = OwnerAuth("pw")
    results = await asyncio.gather(
        *(auth.login_async("guess", NOW, f"10.0.0.{n}") for n in range(8)),
        *(auth.login_async("guess", NOW, "10.9.9.9") for _ in range(8)),
        return_exceptions=True,
    )
    assert most <= HASHING_AT_ONCE
    assert results[:8] == [None] * 8
    # one address: its fifth wrong guess locks it out, so the ones still waiting for their turn are never
    # hashed (those already hashing alongside the fifth are counted as further failures)
    hashed = results[8:].count(None)
    assert 5 <= hashed <= 5 + HASHING_AT_ONCE - 1
    assert all(isinstance(r, chargeflow.web.auth.LoginThrottled) for r in results[8 + hashed :])


async def test_the_driver_page_and_the_dashboard_estimate_costs_on_a_worker_thread(
    client: httpx.AsyncClient,  # noqa: F811
    node: CsmNode,
    view: FakeView,  # noqa: F811
    links: chargeflow.web.auth.DriverLinks,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    driver = Threads(monkeypatch, chargeflow.web.driver, "session_view")
    dashboard = Threads(monkeypatch, chargeflow.web.ui, "session_view")
    async with open_ws(port_of(node), "UI-1", "ocpp1.6") as ws:
        station = Station16("UI-1", ws)
        async with running(station):
            started = await station.call(
                call.StartTransaction(connector_id=1, id_tag="CARD-7", meter_start=0, timestamp=iso(NOW))
            )
            tx = started.transaction_id
            page = await client.get(f"/charge/UI-1/session/{tx}", params={"s": links.secret(tx)})
            await _login(client)
            state = await client.get("/dashboard/state.json")
    assert page.status_code == 200
    assert state.status_code == 200
    assert driver.off_the_loop()
    assert dashboard.off_the_loop()


async def test_reports_are_summed_and_written_on_a_worker_thread(
    billed: Billed,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summed = Threads(monkeypatch, chargeflow.billing.service, "build_report")
    written = Threads(monkeypatch, chargeflow.web.billing_api, "report_csv")
    await charge_16(billed.port, "CP16-F", "TAG-5")
    answer = await billed.client.get("/api/reports?period=day&format=csv", headers=BILLING_AUTH)
    assert answer.status_code == 200
    assert len(answer.text.splitlines()) == 2
    assert summed.off_the_loop()
    assert written.off_the_loop()

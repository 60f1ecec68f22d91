"""``chargeflow serve`` killed with SIGKILL mid-transaction restarts with every acknowledged message."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from chargeflow.bench.ocpp_load import serve_process

TOKEN = "crash-test-token"


@asynccontextmanager
async def serve(db: Path, *extra: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, int, int]]:
    async with serve_process(f"sqlite+aiosqlite:///{db}", TOKEN, *extra, start_timeout_s=30) as server:
        yield server.process, server.ocpp_port, server.http_port


async def test_sigkill_mid_transaction_loses_no_acknowledged_message(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    async with serve(db) as (process, ocpp_port, _):
        url = f"ws://127.0.0.1:{ocpp_port}/CRASH-1"
        async with connect(url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]

            async def ask(n: int, action: str, payload: dict[str, object]) -> dict[str, object]:
                await ws.send(json.dumps([2, f"m{n}", action, payload]))
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert answer[:2] == [3, f"m{n}"]
                result: dict[str, object] = answer[2]
                return result

            await ask(0, "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
            started = await ask(
                1,
                "StartTransaction",
                {"connectorId": 1, "idTag": "T", "meterStart": 10, "timestamp": "2026-01-01T00:00:00Z"},
            )
            tx_id = started["transactionId"]
            for n in range(1, 41):
                sample = {"value": str(10 + n * 25), "measurand": "Energy.Active.Import.Register"}
                meter_value = [{"timestamp": f"2026-01-01T00:{n:02d}:00Z", "sampledValue": [sample]}]
                await ask(
                    n + 1,
                    "MeterValues",
                    {"connectorId": 1, "transactionId": tx_id, "meterValue": meter_value},
                )
            process.send_signal(signal.SIGKILL)
            await process.wait()
    async with (
        serve(db) as (_, _, http_port),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{http_port}", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as api,
    ):
        session = (await api.get(f"/api/sessions/{tx_id}")).json()
    assert session["active"] is True
    assert len(session["meter_values"]) == 40
    assert session["energy_wh"] == 40 * 25


SITE = """
timezone: Europe/Vienna
grid: {max_import_w: 50000, max_export_w: 0}
circuits: [{id: main, max_current_a: 63}]
charging_points: [{id: CRASH-2, circuit: main}]
billing:
  tariffs:
    - tariff:
        id: flat
        currency: EUR
        elements:
          - price_components: [{type: FLAT, price: "1.00", vat: 20, step_size: 1}]
          - price_components: [{type: ENERGY, price: "0.30", vat: 20, step_size: 1}]
"""


async def test_serve_bills_at_the_stop_and_builds_a_missed_cdr_when_it_restarts(tmp_path: Path) -> None:
    from chargeflow.csm.model import StartRequest, StopRequest
    from chargeflow.csm.transactions import apply_stop, from_start
    from chargeflow.runtime.app import open_stores

    db, site = tmp_path / "billing.db", tmp_path / "site.yaml"
    site.write_text(SITE)
    async with serve(db, "--site", str(site)) as (_, ocpp_port, http_port):
        async with connect(f"ws://127.0.0.1:{ocpp_port}/CRASH-2", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            for n, (action, payload) in enumerate(
                [
                    ("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}),
                    ("StartTransaction",
                     {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-01-01T10:00:00Z"}),
                    ("StopTransaction",
                     {"transactionId": 1, "meterStop": 5000, "timestamp": "2026-01-01T11:00:00Z"}),
                ]
            ):  # fmt: skip
                await ws.send(json.dumps([2, f"m{n}", action, payload]))
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert answer[:2] == [3, f"m{n}"]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{http_port}", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as api:
            billed_at_stop = (await api.get("/api/cdrs/1")).json()
    # A session stored with its stop but no CDR: what a crash between the two leaves behind.
    async with open_stores(f"sqlite+aiosqlite:///{db}") as stores:
        start = StartRequest("CRASH-2", 1, "U", 100, datetime(2026, 1, 2, 10, tzinfo=UTC))
        outcome = await stores.repository.start_transaction(start, from_start(start))
        stop = StopRequest("CRASH-2", outcome.transaction.id, 2100, datetime(2026, 1, 2, 12, tzinfo=UTC))
        await stores.repository.stop_transaction(stop, lambda tx: apply_stop(tx, stop))
        assert await stores.billing.get_cdr(str(outcome.transaction.id)) is None
    async with (
        serve(db, "--site", str(site)) as (_, _, http_port),
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{http_port}", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as api,
    ):
        cdrs = (await api.get("/api/cdrs")).json()
    assert billed_at_stop["total_cost"] == {"excl_vat": "2.5", "incl_vat": "3"}  # 1.00 + 5 kWh × 0.30
    assert [(c["id"], c["total_cost"]) for c in cdrs] == [
        ("1", {"excl_vat": "2.5", "incl_vat": "3"}),
        (str(outcome.transaction.id), {"excl_vat": "1.6", "incl_vat": "1.92"}),  # 1.00 + 2 kWh × 0.30
    ]

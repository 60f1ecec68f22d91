"""Billing on a live CSM: sessions driven over OCPP 1.6 and 2.0.1 by the ``ocpp`` library's charge point,
their CDRs built at the stop with the tariff chosen at the start, priced as worked out by hand; tariffs,
CDRs and reports through the API with the admin token; CDRs a crash left out built at the next start.
Each test runs on the in-memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import re
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from chargeflow.billing.attribution import Shares, Source
from chargeflow.billing.ports import BillingStore
from chargeflow.billing.service import BillingService
from chargeflow.billing.setup import BillingRules, rules_from_config
from chargeflow.billing.tariff import Price
from chargeflow.clock import SystemClock
from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.service import CsmConfig
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.app import BillingHooks, CsmNode, build_csm
from chargeflow.site.config import BillingConfig
from tests.databases import BACKENDS, open_billing_stores
from tests.integration.stations import Station16, Station201, iso, open_ws, running
from tests.unit.billing.ocmf_fixtures import key_pair, signed_reading

TOKEN = "billing-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VIENNA = ZoneInfo("Europe/Vienna")
T0 = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # a Monday, 16:00 in Vienna

# 0.50 € a session; 0.40 €/kWh from 17:00 to 21:00 site time, else 0.25 €/kWh; 2 €/h parked, per minute;
# 20 % VAT on everything.
TIME_OF_USE = {
    "id": "tou",
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 20, "step_size": 1}]},
        {
            "price_components": [{"type": "ENERGY", "price": 0.40, "vat": 20, "step_size": 1}],
            "restrictions": {"start_time": "17:00", "end_time": "21:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 20, "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": 2.00, "vat": 20, "step_size": 60}]},
    ],
}
STAFF = {
    "id": "staff",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.10, "vat": 20, "step_size": 1}]}],
}


def rules(meter_keys: dict[str, str] | None = None) -> BillingRules:
    config = BillingConfig.model_validate(
        {
            "tariffs": [{"tariff": TIME_OF_USE}, {"tariff": STAFF, "token_groups": ["staff"]}],
            "token_groups": {"staff": ["EMPLOYEE-1"]},
            "meter_keys": meter_keys or {},
        }
    )
    return rules_from_config(config, "test site")


@dataclass
class Billed:
    node: CsmNode
    billing: BillingService
    store: BillingStore
    repository: CsmRepository
    client: httpx.AsyncClient

    @property
    def port(self) -> int:
        assert self.node.ocpp.port is not None
        return self.node.ocpp.port


KEY = key_pair()


@pytest.fixture(params=BACKENDS)
async def billed(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Billed]:
    from chargeflow.web.api import create_api

    async with open_billing_stores(request.param, tmp_path) as (repository, store):
        billing = BillingService(store, rules({"CS201-B": KEY[1]}), VIENNA)
        node = build_csm(
            repository,
            SystemClock(),
            CsmConfig(auto_register=True, accept_unknown_tokens=True),
            OcppServerConfig(host="127.0.0.1", port=0, call_timeout_s=1.0),
            operation_timeout_s=1.0,
            hooks=BillingHooks(billing),
        )
        task = asyncio.create_task(node.ocpp.serve())
        await asyncio.wait_for(node.ocpp.started.wait(), 5)
        counter = itertools.count(1)
        app = create_api(node.service, node.operations, TOKEN, lambda: next(counter), billing=billing)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            yield Billed(node, billing, store, repository, client)
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def register_16(at: datetime, wh: int, current_a: float | None = None) -> dict[str, Any]:
    values: list[dict[str, Any]] = [
        {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    ]
    if current_a is not None:
        values.append({"value": str(current_a), "measurand": "Current.Import", "phase": "L1", "unit": "A"})
    return {"timestamp": iso(at), "sampledValue": values}


async def charge_16(port: int, station_id: str, tag: str) -> int:
    """16:00–17:30 Vienna: 6 kWh before 17:00, 2 kWh after, then 15 minutes parked."""
    async with open_ws(port, station_id, "ocpp1.6") as ws:
        station = Station16(station_id, ws)
        async with running(station):
            await station.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            started = await station.call(
                call16.StartTransaction(connector_id=1, id_tag=tag, meter_start=1000, timestamp=iso(T0))
            )
            tx_id: int = started.transaction_id
            for minutes, wh in ((30, 4000), (60, 7000), (75, 9000)):
                at = T0 + timedelta(minutes=minutes)
                await station.call(
                    call16.MeterValues(
                        connector_id=1, transaction_id=tx_id, meter_value=[register_16(at, wh, 16.0)]
                    )
                )
            await station.call(
                call16.StopTransaction(
                    meter_stop=9000, timestamp=iso(T0 + timedelta(minutes=90)), transaction_id=tx_id
                )
            )
    return tx_id


async def test_ocpp16_session_gets_its_cdr_priced_by_hand(billed: Billed) -> None:
    tx_id = await charge_16(billed.port, "CP16-B", "TAG-1")
    answer = await billed.client.get(f"/api/cdrs/{tx_id}", headers=AUTH)
    assert answer.status_code == 200
    cdr = answer.json()
    # 6000 Wh × 0.25 + 2000 Wh × 0.40 + 0.25 h × 2.00 + 0.50 = 3.30 €, 3.96 € with 20 % VAT
    assert cdr["total_cost"] == {"excl_vat": "3.3", "incl_vat": "3.96"}
    assert cdr["total_energy_cost"] == {"excl_vat": "2.3", "incl_vat": "2.76"}
    assert cdr["total_parking_cost"] == {"excl_vat": "0.5", "incl_vat": "0.6"}
    assert cdr["total_energy"] == 8.0
    assert cdr["total_parking_time"] == 0.25
    assert cdr["cdr_token"] == {"uid": "TAG-1"}
    assert cdr["cdr_location"] == {"evse_id": "CP16-B"}
    assert cdr["start_date_time"] == "2026-11-02T15:00:00Z"
    assert cdr["end_date_time"] == "2026-11-02T16:30:00Z"
    assert {p["tariff_id"] for p in cdr["charging_periods"]} == {"tou"}
    assert cdr["chargeflow"]["signature"] == "no_key"
    listed = (await billed.client.get("/api/cdrs", headers=AUTH)).json()
    assert [c["id"] for c in listed] == [str(tx_id)]


async def test_token_group_gets_its_own_tariff(billed: Billed) -> None:
    tx_id = await charge_16(billed.port, "CP16-C", "EMPLOYEE-1")
    cdr = (await billed.client.get(f"/api/cdrs/{tx_id}", headers=AUTH)).json()
    assert cdr["total_cost"] == {"excl_vat": "0.8", "incl_vat": "0.96"}  # 8 kWh × 0.10, nothing else


async def test_ocpp201_session_passes_signed_meter_data_through_verified(billed: Billed) -> None:
    private, public = KEY
    t1 = T0 + timedelta(minutes=60)
    readings = [
        (T0, 1000, signed_reading(private, "1.000", "B", "2026-11-02T16:00:00,000+0100 S")),
        (t1, 7000, signed_reading(private, "7.000", "E", "2026-11-02T17:00:00,000+0100 S")),
    ]

    def values(at: datetime, wh: int, signed: str) -> list[dict[str, Any]]:
        signed_value = {
            "signedMeterData": signed,
            "signingMethod": "ECDSA-secp256r1-SHA256",
            "encodingMethod": "OCMF",
            "publicKey": public,
        }
        sampled = {
            "value": wh,
            "measurand": "Energy.Active.Import.Register",
            "unitOfMeasure": {"unit": "Wh"},
            "signedMeterValue": signed_value,
        }
        return [{"timestamp": iso(at), "sampledValue": [sampled]}]

    async with open_ws(billed.port, "CS201-B", "ocpp2.0.1") as ws:
        station = Station201("CS201-B", ws)
        async with running(station):
            for seq, (kind, reason, (at, wh, signed)) in enumerate(
                [("Started", "Authorized", readings[0]), ("Ended", "EVCommunicationLost", readings[1])]
            ):
                await station.call(
                    call201.TransactionEvent(
                        event_type=kind,
                        timestamp=iso(at),
                        trigger_reason=reason,
                        seq_no=seq,
                        transaction_info={"transactionId": "TX-B"},
                        meter_value=values(at, wh, signed),
                        evse={"id": 1, "connectorId": 1},
                        id_token={"idToken": "TAG-2", "type": "ISO14443"},
                    )
                )
    (tx,) = await billed.repository.list_transactions("CS201-B")
    cdr = (await billed.client.get(f"/api/cdrs/{tx.id}", headers=AUTH)).json()
    # 6000 Wh at 0.25 (all before 17:00 Vienna) + 0.50 flat = 2.00 €; no parking: it ends at the last rise
    assert cdr["total_cost"] == {"excl_vat": "2", "incl_vat": "2.4"}
    assert cdr["chargeflow"]["signature"] == "verified"
    assert [v["signed_data"] for v in cdr["signed_data"]["signed_values"]] == [r[2] for r in readings]
    assert [v["nature"] for v in cdr["signed_data"]["signed_values"]] == ["Start", "End"]


async def test_a_cdr_the_server_missed_is_built_at_the_next_start(billed: Billed) -> None:
    billed.node.service.hooks = None  # the server "crashes" between the stop and the CDR
    tx_id = await charge_16(billed.port, "CP16-D", "TAG-3")
    assert await billed.store.get_cdr(str(tx_id)) is None
    restarted = BillingService(billed.store, rules(), VIENNA)
    assert await restarted.catch_up() == [str(tx_id)]
    record = await billed.store.get_cdr(str(tx_id))
    assert record is not None
    assert (record.cost, record.energy_wh) == (Price(Decimal("3.3"), Decimal("3.96")), 8000)
    assert await restarted.catch_up() == []  # once


async def test_tariffs_through_the_api(billed: Billed) -> None:
    assert (await billed.client.get("/api/tariffs")).status_code == 401
    listed = (await billed.client.get("/api/tariffs", headers=AUTH)).json()
    assert [(t["tariff"]["id"], t["origin"]) for t in listed] == [("tou", "site"), ("staff", "site")]
    bad = [{"tariff": {**STAFF, "elements": [{"price_components": [{"type": "ENERGY", "price": -1}]}]}}]
    refused = await billed.client.put("/api/tariffs", json=bad, headers=AUTH)
    assert refused.status_code == 422
    assert "tariffs[0].tariff" in refused.json()["detail"]
    assert "elements[0].price_components[0]" in refused.json()["detail"]
    station_only = {"id": "cp-e", "currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": "0.333", "vat": 10, "step_size": 1}]}
    ]}  # fmt: skip
    put = await billed.client.put(
        "/api/tariffs", json=[{"tariff": station_only, "stations": ["CP16-E"]}], headers=AUTH
    )
    assert put.status_code == 200
    assert [t["tariff"]["id"] for t in put.json()] == ["cp-e", "tou", "staff"]
    assert put.json()[0]["tariff"]["elements"][0]["price_components"][0]["price"] == "0.333"
    tx_id = await charge_16(billed.port, "CP16-E", "TAG-4")
    cdr = (await billed.client.get(f"/api/cdrs/{tx_id}", headers=AUTH)).json()
    assert cdr["total_cost"] == {"excl_vat": "2.664", "incl_vat": "2.9304"}  # 8 kWh × 0.333, +10 %


async def test_reports_with_energy_sources_as_csv_and_json(billed: Billed) -> None:
    first = await charge_16(billed.port, "CP16-F", "TAG-5")
    second = await charge_16(billed.port, "CP16-G", "TAG-5")
    pv = {Source.PV: 5000, Source.BATTERY: 1000, Source.GRID: 2000}
    await billed.store.add_shares({str(first): Shares(pv)})
    await billed.store.add_shares({str(second): Shares({Source.PV: 3000, Source.BATTERY: 0, Source.GRID: 0})})
    answer = await billed.client.get(
        "/api/reports?period=day&group=station&format=csv&from=2026-11-02&to=2026-11-02", headers=AUTH
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [(r["day"], r["station"], r["energy_wh"], r["pv_wh"], r["battery_wh"], r["grid_wh"],
             r["unattributed_wh"], r["cost_excl_vat"], r["cost_incl_vat"]) for r in rows] == [
        ("2026-11-02", "CP16-F", "8000", "5000", "1000", "2000", "0", "3.3", "3.96"),
        ("2026-11-02", "CP16-G", "8000", "3000", "0", "0", "5000", "3.3", "3.96"),
    ]  # fmt: skip
    by_token = (
        await billed.client.get("/api/reports?period=month&group=id_token&format=json", headers=AUTH)
    ).json()
    assert by_token["rows"] == [
        {
            "month": "2026-11",
            "id_token": "TAG-5",
            "currency": "EUR",
            "sessions": 2,
            "energy_wh": 16000,
            "pv_wh": 8000,
            "battery_wh": 1000,
            "grid_wh": 2000,
            "unattributed_wh": 5000,
            "cost_excl_vat": "6.6",
            "cost_incl_vat": "7.92",
        }
    ]
    empty = await billed.client.get("/api/reports?period=day&format=json&from=2026-11-03", headers=AUTH)
    assert empty.json()["rows"] == []
    cdr = (await billed.client.get(f"/api/cdrs/{first}", headers=AUTH)).json()
    assert cdr["chargeflow"]["energy_sources_wh"] == {"pv": 5000, "battery": 1000, "grid": 2000}


async def test_driver_page_prices_with_the_sessions_tariff(billed: Billed) -> None:
    from chargeflow.web.api import create_api
    from chargeflow.web.auth import DriverLinks, OwnerAuth
    from chargeflow.web.ui import UiSettings
    from tests.integration.test_web_ui import NOW, FakeView, _login

    links = DriverLinks(b"k" * 32)
    ui = UiSettings(FakeView(), OwnerAuth("pw"), links, billing=billed.billing)
    app = create_api(
        billed.node.service, billed.node.operations, TOKEN, lambda: 1, ui, billing=billed.billing
    )
    costs = {}
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://site") as client,
        open_ws(billed.port, "UI-1", "ocpp1.6") as ws,
    ):
        station = Station16("UI-1", ws)
        async with running(station):
            prices = (await client.get("/charge/UI-1")).text
            for base, tag in ((0, "TAG-9"), (10_000, "EMPLOYEE-1")):
                start = NOW - timedelta(hours=1)  # 09:00–10:00 UTC, 11:00–12:00 in Vienna: off-peak
                started = await station.call(
                    call16.StartTransaction(
                        connector_id=1, id_tag=tag, meter_start=base, timestamp=iso(start)
                    )
                )
                tx = started.transaction_id
                await station.call(
                    call16.MeterValues(
                        connector_id=1, transaction_id=tx, meter_value=[register_16(NOW, base + 4000)]
                    )
                )
                page = await client.get(f"/charge/UI-1/session/{tx}", params={"s": links.secret(tx)})
                costs[tag] = re.search(r'id="d-cost">([^<]+)<', page.text)
                await station.call(
                    call16.StopTransaction(meter_stop=base + 4000, timestamp=iso(NOW), transaction_id=tx)
                )
        assert (await client.get("/dashboard/report")).status_code == 401
        await _login(client, "pw")
        assert 'id="report-download"' in (await client.get("/dashboard")).text
        report = await client.get(
            "/dashboard/report", params={"period": "day", "group": "id_token", "format": "csv"}
        )
        past = (await client.get("/dashboard/state.json")).json()["past"]
    # 4 kWh × 0.25 + 0.50 flat = 1.50 €, 1.80 € with VAT; the staff tariff: 4 kWh × 0.10 = 0.48 € with VAT
    assert {tag: m.group(1) if m else None for tag, m in costs.items()} == {
        "TAG-9": "1.80 EUR",
        "EMPLOYEE-1": "0.48 EUR",
    }
    assert "0.60 EUR per session; 0.48 EUR per kWh, 17:00–21:00; 0.30 EUR per kWh" in prices
    assert {p["id_token"]: p["billed"] for p in past} == {"TAG-9": "1.80 EUR", "EMPLOYEE-1": "0.48 EUR"}
    assert report.headers["content-disposition"] == 'attachment; filename="report-day-by-id_token.csv"'
    assert report.text.splitlines()[1:] == [
        "2026-05-01,EMPLOYEE-1,EUR,1,4000,0,0,0,4000,0.4,0.48",
        "2026-05-01,TAG-9,EUR,1,4000,0,0,0,4000,1.5,1.8",
    ]

"""The REST API against a live CSM: bearer auth, registry, tokens, sessions and station operations."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ocpp.v16 import call

from chargeflow.runtime.app import CsmNode
from chargeflow.web.api import create_api
from tests.integration.conftest import port_of
from tests.integration.stations import Station16, iso, open_ws, running

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(node: CsmNode) -> AsyncIterator[httpx.AsyncClient]:
    counter = itertools.count(100)
    app = create_api(node.service, node.operations, TOKEN, lambda: next(counter))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        yield c


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}])
async def test_requests_without_the_admin_token_get_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert (await client.get("/api/stations", headers=headers)).status_code == 401


async def test_openapi_document_lists_the_api(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {
        "/api/stations",
        "/api/sessions/{session_id}",
        "/api/stations/{station_id}/charging-limit",
    } <= set(paths)


async def test_register_station_then_it_connects_with_its_password(
    client: httpx.AsyncClient, node: CsmNode
) -> None:
    created = await client.post(
        "/api/stations", json={"id": "API-1", "password": "a-long-password-123"}, headers=AUTH
    )
    assert created.status_code == 201
    async with open_ws(port_of(node), "API-1", "ocpp1.6", password="a-long-password-123") as ws:
        station = Station16("API-1", ws)
        async with running(station):
            await station.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            await station.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing")
            )
            detail = (await client.get("/api/stations/API-1", headers=AUTH)).json()
            listed = (await client.get("/api/stations", headers=AUTH)).json()
    assert detail["connected"] is True
    assert detail["ocpp_version"] == "ocpp1.6"
    assert detail["last_heartbeat_at"].endswith("Z")
    assert [c["status"] for c in detail["connectors"]] == ["Preparing"]
    assert [s["id"] for s in listed] == ["API-1"]
    assert (await client.get("/api/stations/NOPE", headers=AUTH)).status_code == 404


async def test_token_expiry_and_session_with_meter_values(client: httpx.AsyncClient, node: CsmNode) -> None:
    expiry = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (
        await client.post(
            "/api/tokens", json={"id_token": "T1", "status": "Accepted", "expiry": expiry}, headers=AUTH
        )
    ).status_code == 201
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    await client.post("/api/tokens", json={"id_token": "T0", "expiry": past}, headers=AUTH)
    t0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    async with open_ws(port_of(node), "API-2", "ocpp1.6") as ws:
        station = Station16("API-2", ws)
        async with running(station):
            expired = await station.call(call.Authorize(id_tag="T0"))
            started = await station.call(
                call.StartTransaction(connector_id=1, id_tag="T1", meter_start=50, timestamp=iso(t0))
            )
            active = (
                await client.get("/api/sessions", params={"station": "API-2", "active": True}, headers=AUTH)
            ).json()
            sample = {"value": "1050", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
            await station.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=started.transaction_id,
                    meter_value=[{"timestamp": iso(t0 + timedelta(minutes=10)), "sampledValue": [sample]}],
                )
            )
            await station.call(
                call.StopTransaction(
                    meter_stop=2050,
                    timestamp=iso(t0 + timedelta(minutes=20)),
                    transaction_id=started.transaction_id,
                )
            )
    assert expired.id_tag_info["status"] == "Expired"
    assert started.id_tag_info["status"] == "Accepted"
    assert [s["id"] for s in active] == [started.transaction_id]
    session = (await client.get(f"/api/sessions/{started.transaction_id}", headers=AUTH)).json()
    assert session["energy_wh"] == 2000
    assert session["start"] == "2026-05-01T10:00:00Z"
    assert session["active"] is False
    assert [m["value"] for m in session["meter_values"]] == ["1050"]
    assert (await client.get("/api/sessions", params={"active": True}, headers=AUTH)).json() == []


async def test_operations_return_the_station_answer(client: httpx.AsyncClient, node: CsmNode) -> None:
    async with open_ws(port_of(node), "API-3", "ocpp1.6") as ws:
        station = Station16("API-3", ws)
        async with running(station):
            reset = await client.post("/api/stations/API-3/reset", json={"type": "hard"}, headers=AUTH)
            start = await client.post(
                "/api/stations/API-3/remote-start", json={"id_token": "RT", "connector_id": 1}, headers=AUTH
            )
            limit = await client.post(
                "/api/stations/API-3/charging-limit",
                json={"connector_id": 1, "limit": 13.5, "unit": "A"},
                headers=AUTH,
            )
            composite = await client.get(
                "/api/stations/API-3/composite-schedule",
                params={"connector_id": 1, "duration": 900},
                headers=AUTH,
            )
            bad = await client.post(
                "/api/stations/API-3/trigger", json={"message": "NoSuchMessage"}, headers=AUTH
            )
    assert reset.json()["answer"] == {"status": "Accepted"}
    assert start.json()["answer"] == {"status": "Accepted"}
    assert limit.json()["answer"] == {"status": "Accepted"}
    periods = composite.json()["answer"]["chargingSchedule"]["chargingSchedulePeriod"]
    assert periods == [{"startPeriod": 0, "limit": 13.5}]
    assert bad.status_code == 422
    offline = await client.post("/api/stations/API-3/reset", json={}, headers=AUTH)
    assert offline.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 10, "purpose": "TxProfile"},
        {"limit": 10, "purpose": "TxDefaultProfile", "transaction_id": "1"},
        {"limit": 10, "purpose": "ChargePointMaxProfile", "connector_id": 1},
        {"limit": -1},
    ],
)
async def test_charging_limit_requests_that_make_no_sense_get_422(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    assert (await client.post("/api/stations/X/charging-limit", json=body, headers=AUTH)).status_code == 422


async def test_operation_times_out_with_504_when_the_station_stays_silent(
    client: httpx.AsyncClient, node: CsmNode
) -> None:
    async with open_ws(port_of(node), "API-4", "ocpp1.6") as ws:
        pending = asyncio.create_task(
            client.post("/api/stations/API-4/trigger", json={"message": "Heartbeat"}, headers=AUTH)
        )
        sent = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert sent[2:] == ["TriggerMessage", {"requestedMessage": "Heartbeat"}]
        answer = await pending
    assert answer.status_code == 504
    assert "did not answer" in answer.json()["detail"]


async def test_reservation_lifecycle_reserve_use_and_cancel(client: httpx.AsyncClient, node: CsmNode) -> None:
    expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    async with open_ws(port_of(node), "RSV-1", "ocpp1.6") as ws:

        async def answer(status: str) -> list[Any]:
            request: list[Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(json.dumps([3, request[1], {"status": status}]))
            return request

        reserved, sent = await asyncio.gather(
            client.post(
                "/api/stations/RSV-1/reservations",
                json={"connector_id": 1, "id_token": "R1", "expiry": expiry},
                headers=AUTH,
            ),
            answer("Accepted"),
        )
        body = reserved.json()
        assert sent[2] == "ReserveNow"
        assert sent[3]["reservationId"] == body["reservation_id"]
        assert (body["status"], body["answer"]) == ("Accepted", {"status": "Accepted"})

        refused, _ = await asyncio.gather(
            client.post(
                "/api/stations/RSV-1/reservations",
                json={"connector_id": 2, "id_token": "R2", "expiry": expiry},
                headers=AUTH,
            ),
            answer("Occupied"),
        )
        assert refused.json()["status"] == "Rejected"

        start = {
            "connectorId": 1,
            "idTag": "R1",
            "meterStart": 0,
            "timestamp": iso(datetime.now(UTC)),
            "reservationId": body["reservation_id"],
        }
        await ws.send(json.dumps([2, "st", "StartTransaction", start]))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[0] == 3

        cancelled, _ = await asyncio.gather(
            client.delete(
                f"/api/stations/RSV-1/reservations/{refused.json()['reservation_id']}", headers=AUTH
            ),
            answer("Accepted"),
        )
        assert cancelled.json()["status"] == "Cancelled"
    used = await node.service.repository.get_reservation(body["reservation_id"])
    assert used is not None
    assert used.status == "Used"
    missing = await client.delete("/api/stations/RSV-1/reservations/999", headers=AUTH)
    assert missing.status_code == 404
    offline = await client.post(
        "/api/stations/RSV-1/reservations",
        json={"connector_id": 1, "id_token": "R1", "expiry": expiry},
        headers=AUTH,
    )
    assert offline.status_code == 409

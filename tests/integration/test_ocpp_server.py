"""Server behaviours that need their own set-up: callbacks from a handler, per-station policies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chargeflow.csm.throttle import Admission
from chargeflow.protocols.ocpp.connection import Handler, StationConnection
from chargeflow.protocols.ocpp.frames import OcppVersion
from chargeflow.protocols.ocpp.server import OcppServer, OcppServerConfig, StationPolicy
from chargeflow.runtime.app import message_ids
from tests.integration.stations import open_ws


class OpenGate:
    async def admission(self, station_id: str, password: str | None) -> Admission:
        return Admission.VERIFIED

    async def admit_certified(self, station_id: str) -> bool:
        return True

    async def connected(self, station_id: str, ocpp_version: str) -> None:
        return None


async def boot_asking_back(conn: StationConnection, payload: dict[str, Any]) -> dict[str, Any]:
    """A handler that calls the station it serves before it answers."""
    config = await conn.call("GetConfiguration", {"key": ["HeartbeatInterval"]}, timeout_s=3)
    interval = int(config["configurationKey"][0]["value"])
    return {"status": "Accepted", "currentTime": "2026-01-01T00:00:00.000Z", "interval": interval}


async def heartbeat(conn: StationConnection, payload: dict[str, Any]) -> dict[str, Any]:
    return {"currentTime": "2026-01-01T00:00:00.000Z"}


@pytest.fixture
async def server() -> AsyncIterator[OcppServer]:
    handlers: dict[str, Handler] = {"BootNotification": boot_asking_back, "Heartbeat": heartbeat}
    routes = dict.fromkeys(OcppVersion, handlers)
    config = OcppServerConfig(
        port=0,
        stations={
            "LENIENT": StationPolicy(strict=False),
            "OLD-ONLY": StationPolicy(versions=(OcppVersion.V16,)),
        },
    )
    built = OcppServer(config, routes, OpenGate(), message_ids("t"))
    task = asyncio.create_task(built.serve())
    await asyncio.wait_for(built.started.wait(), 5)
    yield built
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


async def test_handler_can_call_back_the_station_it_serves(server: OcppServer) -> None:
    assert server.port is not None
    async with open_ws(server.port, "CB-1", "ocpp1.6") as ws:
        await ws.send(
            json.dumps([2, "boot", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}])
        )
        asked = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert asked[2:] == ["GetConfiguration", {"key": ["HeartbeatInterval"]}]
        await ws.send(
            json.dumps(
                [
                    3,
                    asked[1],
                    {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "42"}]},
                ]
            )
        )
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert answer[:2] == [3, "boot"]
    assert answer[2]["interval"] == 42


async def test_lenient_station_has_its_quirk_accepted_strict_one_does_not(server: OcppServer) -> None:
    assert server.port is not None
    quirky = json.dumps([2, "hb", "Heartbeat", {"vendorQuirk": True}])
    async with open_ws(server.port, "LENIENT", "ocpp1.6") as ws:
        await ws.send(quirky)
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[0] == 3
    async with open_ws(server.port, "STRICT", "ocpp1.6") as ws:
        await ws.send(quirky)
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:3] == [4, "hb", "FormationViolation"]


async def test_per_station_version_override(server: OcppServer) -> None:
    assert server.port is not None
    async with connect(
        f"ws://127.0.0.1:{server.port}/OLD-ONLY",
        subprotocols=["ocpp2.0.1", "ocpp1.6"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "ocpp1.6"
    with pytest.raises(InvalidStatus):
        async with connect(f"ws://127.0.0.1:{server.port}/OLD-ONLY", subprotocols=["ocpp2.0.1"]):  # type: ignore[list-item]
            pass
    async with connect(
        f"ws://127.0.0.1:{server.port}/OTHER",
        subprotocols=["ocpp1.6", "ocpp2.1"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "ocpp2.1"


async def test_late_answer_after_timeout_is_ignored_and_connection_stays_up(server: OcppServer) -> None:
    assert server.port is not None
    async with open_ws(server.port, "LATE-1", "ocpp1.6") as ws:
        conn = server.connection("LATE-1")
        assert conn is not None
        with pytest.raises(TimeoutError):
            await conn.call("Reset", {"type": "Soft"}, timeout_s=0.2)
        sent = json.loads(await ws.recv())
        await ws.send(json.dumps([3, sent[1], {"status": "Accepted"}]))  # too late: dropped with a log line
        await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:2] == [3, "hb"]


async def test_reconnecting_station_replaces_its_older_connection(server: OcppServer) -> None:
    assert server.port is not None
    async with open_ws(server.port, "TWICE", "ocpp1.6") as first:
        first_connection = server.connection("TWICE")
        async with open_ws(server.port, "TWICE", "ocpp1.6") as second:
            await asyncio.wait_for(first.wait_closed(), 5)
            assert first.close_code == 1000
            assert server.connection("TWICE") is not first_connection
            await second.send(json.dumps([2, "hb", "Heartbeat", {}]))
            assert json.loads(await asyncio.wait_for(second.recv(), 5))[:2] == [3, "hb"]
        assert first_connection is not None


async def test_ocpp21_station_is_served_with_the_21_schemas(server: OcppServer) -> None:
    assert server.port is not None
    async with open_ws(server.port, "V21-1", "ocpp2.1") as ws:
        assert ws.subprotocol == "ocpp2.1"
        await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:2] == [3, "hb"]
        await ws.send(json.dumps([2, "bad", "Heartbeat", {"unexpected": 1}]))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:3] == [4, "bad", "FormatViolation"]


async def test_handler_that_hangs_is_answered_with_internal_error_in_bounded_time() -> None:
    async def hang(conn: StationConnection, payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(60)
        return {}

    handlers: dict[str, Handler] = {"Heartbeat": hang}
    config = OcppServerConfig(port=0, handler_timeout_s=0.2)
    server = OcppServer(config, dict.fromkeys(OcppVersion, handlers), OpenGate(), message_ids("h"))
    task = asyncio.create_task(server.serve())
    await asyncio.wait_for(server.started.wait(), 5)
    assert server.port is not None
    try:
        async with open_ws(server.port, "HANG-1", "ocpp1.6") as ws:
            await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    assert answer[:3] == [4, "hb", "InternalError"]

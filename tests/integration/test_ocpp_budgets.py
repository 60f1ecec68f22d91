"""Issue 13, item 6 over a real loopback websocket: a station's frames, samples and rate have budgets, and
the queued messages of a closed connection are dropped, not run."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode

from chargeflow.csm.throttle import Admission
from chargeflow.protocols.ocpp.budgets import OcppBudgets, TokenBucket, sample_count
from chargeflow.protocols.ocpp.connection import Handler, StationConnection
from chargeflow.protocols.ocpp.frames import OcppVersion
from chargeflow.protocols.ocpp.server import OcppServer, OcppServerConfig
from tests.integration.stations import open_ws

AT = "2026-01-01T00:00:00Z"


def meter_values(samples: int) -> dict[str, Any]:
    sampled = [{"value": str(n)} for n in range(samples)]
    return {"connectorId": 1, "meterValue": [{"timestamp": AT, "sampledValue": sampled}]}


class Gate:
    async def admission(self, station_id: str, password: str | None) -> Admission:
        return Admission.VERIFIED

    async def admit_certified(self, station_id: str) -> bool:
        return True

    async def connected(self, station_id: str, ocpp_version: str) -> None:
        return None


class Counting:
    """Handlers that count what they were given and take ``delay_s`` each."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.handled: list[str] = []

    def routes(self) -> dict[str, Handler]:
        async def heartbeat(conn: StationConnection, payload: dict[str, Any]) -> dict[str, Any]:
            self.handled.append("Heartbeat")
            await asyncio.sleep(self.delay_s)
            return {"currentTime": AT}

        async def meter(conn: StationConnection, payload: dict[str, Any]) -> dict[str, Any]:
            self.handled.append("MeterValues")
            return {}

        return {"Heartbeat": heartbeat, "MeterValues": meter}


@contextlib.asynccontextmanager
async def server(handlers: Counting, budgets: OcppBudgets | None = None) -> AsyncIterator[OcppServer]:
    config = OcppServerConfig(port=0, ping_interval_s=None, budgets=budgets or OcppBudgets())
    counter = itertools.count()
    built = OcppServer(config, {OcppVersion.V16: handlers.routes()}, Gate(), lambda: f"s-{next(counter)}")
    task = asyncio.create_task(built.serve())
    try:
        await asyncio.wait_for(built.started.wait(), 5)
        yield built
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def port(built: OcppServer) -> int:
    assert built.port is not None
    return built.port


async def test_a_frame_over_the_budget_closes_with_1009_before_it_is_handled() -> None:
    handlers = Counting()
    async with server(handlers) as built, open_ws(port(built), "BIG-1", "ocpp1.6") as ws:
        frame = json.dumps([2, "m1", "MeterValues", meter_values(12_000)])
        assert len(frame) > OcppBudgets().max_frame_bytes
        await ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG
    assert handlers.handled == []


async def test_too_many_samples_in_one_message_are_refused_and_the_station_stays_connected() -> None:
    handlers = Counting()
    limit = OcppBudgets().max_samples_per_message
    async with server(handlers) as built, open_ws(port(built), "MANY-1", "ocpp1.6") as ws:
        await ws.send(json.dumps([2, "m1", "MeterValues", meter_values(limit + 1)]))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer[:3] == [4, "m1", "OccurenceConstraintViolation"]
        assert str(limit) in answer[3]
        await ws.send(json.dumps([2, "m2", "MeterValues", meter_values(limit)]))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == [3, "m2", {}]
    assert handlers.handled == ["MeterValues"]


async def test_messages_beyond_the_rate_are_delayed_not_refused() -> None:
    handlers = Counting()
    budgets = OcppBudgets(messages_per_s=50.0, burst=10)
    async with server(handlers, budgets) as built, open_ws(port(built), "FAST-1", "ocpp1.6") as ws:
        started = time.perf_counter()
        for n in range(60):
            await ws.send(json.dumps([2, f"h{n}", "Heartbeat", {}]))
        answers = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(60)]
        elapsed_s = time.perf_counter() - started
    assert [a[0] for a in answers] == [3] * 60  # every one answered, none refused
    assert elapsed_s >= 0.8  # 50 beyond the burst of 10, at 50 a second: 1 s (a busy machine only adds)


async def test_reconnecting_does_not_refill_a_stations_rate_budget() -> None:
    handlers = Counting()
    budgets = OcppBudgets(messages_per_s=20.0, burst=10)
    async with server(handlers, budgets) as built:
        async with open_ws(port(built), "AGAIN-1", "ocpp1.6") as ws:
            for n in range(10):  # the whole burst
                await ws.send(json.dumps([2, f"a{n}", "Heartbeat", {}]))
            for _ in range(10):
                await asyncio.wait_for(ws.recv(), 10)
        async with open_ws(port(built), "AGAIN-1", "ocpp1.6") as ws:
            started = time.perf_counter()
            for n in range(10):
                await ws.send(json.dumps([2, f"b{n}", "Heartbeat", {}]))
            for _ in range(10):
                await asyncio.wait_for(ws.recv(), 10)
            elapsed_s = time.perf_counter() - started
    assert elapsed_s >= 0.3  # 10 at 20 a second, less what the reconnection refilled: about 0.45 s


async def test_the_queued_messages_of_a_closed_connection_are_not_run() -> None:
    handlers = Counting(delay_s=0.3)
    async with server(handlers) as built:
        async with open_ws(port(built), "GONE-1", "ocpp1.6") as ws:
            for n in range(8):
                await ws.send(json.dumps([2, f"h{n}", "Heartbeat", {}]))
            await asyncio.sleep(0.1)  # the first is being handled, the others wait in the queue
        await asyncio.sleep(1.5)  # time enough for all eight had they been run
    assert 1 <= len(handlers.handled) <= 2


def test_samples_are_counted_across_meter_values_and_wrong_shapes_count_nothing() -> None:
    two: dict[str, Any] = {"meterValue": [{"sampledValue": [{}, {}]}, {"sampledValue": [{}]}]}
    assert sample_count("MeterValues", two) == 3
    assert sample_count("TransactionEvent", two) == 3
    assert sample_count("StopTransaction", {"transactionData": [{"sampledValue": [{}]}]}) == 1
    assert sample_count("Heartbeat", two) == 0
    assert sample_count("MeterValues", {"meterValue": "x"}) == 0
    assert sample_count("MeterValues", []) == 0


def test_token_bucket_gives_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10.0, capacity=2, now=0.0)
    assert bucket.delay(0.0) == 0.0
    assert bucket.delay(0.0) == 0.0
    assert bucket.delay(0.0) == pytest.approx(0.1)
    assert bucket.delay(0.0) == pytest.approx(0.2)
    assert bucket.delay(1.0) == 0.0  # refilled, but never beyond the capacity

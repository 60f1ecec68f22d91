"""The handler timeout: one timer per connection, and a call past its deadline answered InternalError."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from chargeflow.protocols.ocpp.connection import ConnectionOptions, Handler, StationConnection
from chargeflow.protocols.ocpp.frames import Call, OcppVersion
from chargeflow.protocols.ocpp.schemas import SchemaRegistry
from tests.transports import NullTransport


def connection(handlers: dict[str, Handler], timeout_s: float) -> StationConnection:
    options = ConnectionOptions(handler_timeout_s=timeout_s)
    return StationConnection(
        "T1", OcppVersion.V16, NullTransport(), handlers, SchemaRegistry(), lambda: "id", options
    )


def heartbeat(sleep_s: float) -> Handler:
    async def handle(conn: StationConnection, payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(sleep_s)
        return {"currentTime": "2026-01-01T00:00:00Z"}

    return handle


async def test_a_call_past_its_deadline_is_internal_error_and_the_next_one_is_answered() -> None:
    slow = {"Heartbeat": heartbeat(5.0)}
    conn = connection(slow, timeout_s=0.05)
    started = asyncio.get_running_loop().time()
    answer = json.loads(await conn.answer(Call("a", "Heartbeat", {})))
    assert answer[:3] == [4, "a", "InternalError"]
    assert asyncio.get_running_loop().time() - started < 1.0

    conn._handlers = {"Heartbeat": heartbeat(0.0)}
    assert json.loads(await conn.answer(Call("b", "Heartbeat", {})))[:2] == [3, "b"]


async def test_calls_within_the_timeout_are_answered_under_one_rearmed_timer() -> None:
    conn = connection({"Heartbeat": heartbeat(0.02)}, timeout_s=0.05)
    # Ten calls of 20 ms each outlast the first deadline; none may be cut short by an old timer.
    for n in range(10):
        assert json.loads(await conn.answer(Call(f"m{n}", "Heartbeat", {})))[:2] == [3, f"m{n}"]


async def test_concurrent_calls_each_keep_their_own_deadline() -> None:
    async def handle(conn: StationConnection, payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.3 if payload.get("data") == "slow" else 0.0)
        return {}

    conn = connection({"DataTransfer": handle}, timeout_s=0.1)
    slow = asyncio.create_task(conn.answer(Call("s", "DataTransfer", {"vendorId": "x", "data": "slow"})))
    await asyncio.sleep(0.05)
    fast = await conn.answer(Call("f", "DataTransfer", {"vendorId": "x"}))
    assert json.loads(fast)[:2] == [3, "f"]
    assert json.loads(await slow)[:3] == [4, "s", "InternalError"]


async def test_a_real_cancellation_is_not_turned_into_an_answer() -> None:
    conn = connection({"Heartbeat": heartbeat(5.0)}, timeout_s=10.0)
    task = asyncio.create_task(conn.answer(Call("c", "Heartbeat", {})))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

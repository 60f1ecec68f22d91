"""#13 item 11: wrong station passwords are throttled, and an impostor never displaces a station.

Real websockets on loopback against a real CSM; the clients pick their source address in 127.0.0.0/8
to play several hosts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from chargeflow.clock import SystemClock
from chargeflow.csm import passwords
from chargeflow.csm.service import CsmConfig
from chargeflow.csm.throttle import Budget
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.app import CsmNode, build_csm
from chargeflow.store.memory import MemoryRepository
from tests.integration.stations import basic_auth

PASSWORD = "the-right-password-1"


@pytest.fixture
async def node() -> AsyncIterator[CsmNode]:
    config = OcppServerConfig(
        host="127.0.0.1",
        port=0,
        failures_per_station=Budget(burst=3, refill_s=60.0),
        failures_per_address=Budget(burst=5, refill_s=60.0),
        live_window_s=1.0,
    )
    built = build_csm(MemoryRepository(), SystemClock(), CsmConfig(), config, operation_timeout_s=1.0)
    task = asyncio.create_task(built.ocpp.serve())
    await asyncio.wait_for(built.ocpp.started.wait(), 5)
    await built.service.register_station("LOCKED", PASSWORD)
    await built.service.register_station("OPEN", None)
    yield built
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords the CSM hashed to check them (each one costs tens of ms of CPU)."""
    checked: list[str] = []
    verify = passwords.verify_password

    def counting(password: str, stored: str) -> bool:
        checked.append(password)
        return verify(password, stored)

    monkeypatch.setattr("chargeflow.csm.service.verify_password", counting)
    return checked


def station(node: CsmNode, station_id: str, password: str | None = None, source: str = "127.0.0.1") -> Any:
    """The handshake of a 1.6 station (an async context manager giving its websocket)."""
    assert node.ocpp.port is not None
    return connect(
        f"ws://127.0.0.1:{node.ocpp.port}/{station_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=basic_auth(station_id, password) if password is not None else None,
        open_timeout=5,
        local_addr=(source, 0),
    )


async def refused(node: CsmNode, station_id: str, password: str | None, source: str = "127.0.0.1") -> int:
    with pytest.raises(InvalidStatus) as refusal:
        async with station(node, station_id, password, source):
            pass
    return refusal.value.response.status_code


async def heartbeat(ws: ClientConnection) -> None:
    await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
    assert json.loads(await asyncio.wait_for(ws.recv(), 5))[:2] == [3, "hb"]


async def test_wrong_passwords_past_the_budget_are_refused_before_hashing(
    node: CsmNode, hashes: list[str]
) -> None:
    for n in range(3):
        assert await refused(node, "LOCKED", f"guess-{n}", "127.0.0.2") == 401
    # over the station's budget: 429 at once, from any address, even with the right password
    for n in range(20):
        assert await refused(node, "LOCKED", f"guess-{n}", f"127.0.1.{n + 1}") == 429
    with pytest.raises(InvalidStatus) as throttled:
        async with station(node, "LOCKED", PASSWORD, "127.0.0.3"):
            pass
    assert throttled.value.response.status_code == 429
    assert int(throttled.value.response.headers["Retry-After"]) > 0
    assert hashes == ["guess-0", "guess-1", "guess-2"]  # 24 attempts, 3 hashes


async def test_the_station_gets_in_from_where_it_proved_itself_while_its_id_is_under_attack(
    node: CsmNode,
) -> None:
    async with station(node, "LOCKED", PASSWORD, "127.0.0.1") as ws:
        await heartbeat(ws)
    for n in range(5):
        await refused(node, "LOCKED", f"guess-{n}", "127.0.0.2")
    async with station(node, "LOCKED", PASSWORD, "127.0.0.1") as ws:  # the station's own address
        await heartbeat(ws)


async def test_wrong_passwords_are_budgeted_per_address_across_station_ids(node: CsmNode) -> None:
    for n in range(5):
        await node.service.register_station(f"S{n}", PASSWORD)
        assert await refused(node, f"S{n}", "wrong", "127.0.0.4") == 401
    assert await refused(node, "LOCKED", PASSWORD, "127.0.0.4") == 429  # this address spent its budget
    async with station(node, "LOCKED", PASSWORD, "127.0.0.5") as ws:  # others are not affected
        await heartbeat(ws)


async def test_an_impostor_with_a_wrong_password_leaves_the_station_connected(node: CsmNode) -> None:
    async with station(node, "LOCKED", PASSWORD) as real:
        connection = node.ocpp.connection("LOCKED")
        assert await refused(node, "LOCKED", "not-the-password", "127.0.0.6") == 401
        assert await refused(node, "LOCKED", None, "127.0.0.6") == 401
        assert node.ocpp.connection("LOCKED") is connection
        await heartbeat(real)


async def test_a_station_that_proves_its_password_replaces_its_half_open_connection(node: CsmNode) -> None:
    async with station(node, "LOCKED", PASSWORD) as old:
        await heartbeat(old)
        async with station(node, "LOCKED", PASSWORD, "127.0.0.7") as new:
            await asyncio.wait_for(old.wait_closed(), 2)
            await heartbeat(new)


async def test_an_open_station_is_not_displaced_while_it_speaks(node: CsmNode) -> None:
    async with station(node, "OPEN") as real:
        await heartbeat(real)
        assert await refused(node, "OPEN", None, "127.0.0.8") == 409
        assert await refused(node, "OPEN", "any-password", "127.0.0.8") == 409
        await heartbeat(real)  # still served
        # quiet for longer than the live window (the heartbeat interval here is 1 s): its socket is
        # taken for dead and a newcomer may take its place
        await asyncio.sleep(1.3)
        async with station(node, "OPEN", None, "127.0.0.8") as newcomer:
            await asyncio.wait_for(real.wait_closed(), 2)
            await heartbeat(newcomer)


async def test_a_flood_of_wrong_passwords_costs_a_few_hashes_and_leaves_others_served(
    node: CsmNode, hashes: list[str]
) -> None:
    """400 wrong-password handshakes from 4 addresses, 8 at a time, while a station sends heartbeats.
    Bounds are generous (a busy machine); the figures are printed (pytest -s)."""
    latencies: list[float] = []
    flood_done = asyncio.Event()

    async def beating(ws: ClientConnection) -> None:
        while not flood_done.is_set():
            started = asyncio.get_running_loop().time()
            await heartbeat(ws)
            latencies.append(asyncio.get_running_loop().time() - started)
            await asyncio.sleep(0.02)

    async def guesser(n: int) -> list[int]:
        return [await refused(node, "LOCKED", f"g{n}-{k}", f"127.0.2.{n % 4 + 1}") for k in range(50)]

    loop = asyncio.get_running_loop()
    async with station(node, "OPEN") as ws:
        beats = asyncio.create_task(beating(ws))
        started = loop.time()
        answers = [a for many in await asyncio.gather(*(guesser(n) for n in range(8))) for a in many]
        took = loop.time() - started
        flood_done.set()
        await beats
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else 0.0
    print(
        f"\n{len(answers)} guesses in {took:.2f} s: {answers.count(401)} x 401, {answers.count(429)} x 429, "
        f"{len(hashes)} hashes; heartbeats {len(latencies)}, p99 {p99 * 1000:.1f} ms"
    )
    assert len(hashes) == 3  # the station's budget: every other guess refused before hashing
    assert answers.count(429) == 397
    assert p99 < 1.0


async def test_behind_a_named_proxy_the_budget_is_the_stations_address() -> None:
    config = OcppServerConfig(
        port=0, failures_per_address=Budget(burst=2, refill_s=60.0), trusted_proxies=("127.0.0.0/8",)
    )
    node = build_csm(MemoryRepository(), SystemClock(), CsmConfig(), config)
    task = asyncio.create_task(node.ocpp.serve())
    await asyncio.wait_for(node.ocpp.started.wait(), 5)
    await node.service.register_station("P-1", PASSWORD)

    async def attempt(forwarded_for: str, password: str) -> int:
        headers = {**basic_auth("P-1", password), "X-Forwarded-For": forwarded_for}
        try:
            async with connect(
                f"ws://127.0.0.1:{node.ocpp.port}/P-1",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=headers,
                open_timeout=5,
            ):
                return 101
        except InvalidStatus as refusal:
            return refusal.response.status_code

    try:
        # a guesser behind the proxy rotates its own entries; the proxy's appended address decides
        guesses = [await attempt(f"10.0.0.{n}, 198.51.100.1", "wrong") for n in range(3)]
        station = await attempt("198.51.100.2", PASSWORD)  # another host behind the same proxy
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    assert guesses == [401, 401, 429]
    assert station == 101


async def test_auto_registrations_with_a_password_spend_the_address_budget() -> None:
    config = OcppServerConfig(port=0, failures_per_address=Budget(burst=2, refill_s=60.0))
    node = build_csm(MemoryRepository(), SystemClock(), CsmConfig(auto_register=True), config)
    task = asyncio.create_task(node.ocpp.serve())
    await asyncio.wait_for(node.ocpp.started.wait(), 5)
    try:
        for n in range(2):  # each one a PBKDF2 hash and a row
            async with station(node, f"NEW-{n}", PASSWORD, "127.0.3.1") as ws:
                await heartbeat(ws)
        assert await refused(node, "NEW-2", PASSWORD, "127.0.3.1") == 429
        assert await node.service.repository.get_station("NEW-2") is None
        async with station(node, "NEW-2", PASSWORD, "127.0.3.2") as ws:  # from elsewhere
            await heartbeat(ws)
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def test_many_stations_behind_one_address_reconnecting_together_all_get_in(node: CsmNode) -> None:
    """A gateway's stations after a restart: more at once than the address's budget (5 here), all right
    passwords: they wait their turn for a check, none is refused."""
    ids = [f"GW-{n}" for n in range(12)]
    for station_id in ids:
        await node.service.register_station(station_id, PASSWORD)

    async def connect_one(station_id: str) -> None:
        async with station(node, station_id, PASSWORD, "127.0.5.1") as ws:
            await heartbeat(ws)

    await asyncio.gather(*(connect_one(station_id) for station_id in ids))

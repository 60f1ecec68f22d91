"""``serve --site --ems`` and ``chargeflow ems`` over a private Mosquitto that is killed and started again
on the same port: once the last grant runs out the stations are at their safe limit; when the broker is
back both processes find it by themselves and the grant returns — nothing is restarted but the broker."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chargeflow.bench.ocpp_load import serve_process
from chargeflow.sim.drawing import DrawingStation, Ev, connected
from tests.e2e.test_serve_ems_process import SITE, _safe, ems_process
from tests.e2e.test_serve_store_down import _granted
from tests.integration.test_mqtt_exchange_outage import Broker, broker

__all__ = ["broker"]  # the private broker's fixture


async def _until(
    predicate: Callable[[], bool], timeout_s: float, report: Callable[[], Awaitable[None]]
) -> float:
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout_s, "timed out"
        await report()
        await asyncio.sleep(0.5)
    return time.monotonic() - start


async def test_a_lost_broker_brings_the_safe_limit_and_its_return_the_grant(
    tmp_path: Path, broker: Broker
) -> None:
    await broker.start()
    site_file = tmp_path / "site.yaml"
    site_file.write_text(SITE)
    url = f"mqtt://127.0.0.1:{broker.port}/chargeflow-test-{secrets.token_hex(4)}"
    ev = Ev(max_a=32.0)
    db = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    async with contextlib.AsyncExitStack() as stack:
        server, ems = await asyncio.gather(  # both start at once: each takes seconds to import
            stack.enter_async_context(
                serve_process(
                    db, "bus-token-0123456789abcdef", "--site", str(site_file), "--step", "2", "--ems", url
                )
            ),
            stack.enter_async_context(ems_process(site_file, url)),
        )
        stations: list[DrawingStation] = [
            await stack.enter_async_context(connected(server.ocpp_port, sid, "1.6")) for sid in ("e1", "e2")
        ]

        async def report() -> None:
            await asyncio.gather(*(s.report(ev, 0.5) for s in stations), return_exceptions=True)

        for i, s in enumerate(stations):
            await s.start_session(f"t{i}")
        await _until(lambda: _granted(stations), 15, report)
        await broker.kill()
        # the last grant holds 3 steps (6 s); then, within a step, every station is at its safe limit
        took = await _until(lambda: _safe(stations), 12, report)
        assert took < 10
        await broker.start()
        await _until(lambda: _granted(stations), 15, report)
        assert ems.returncode is None  # the EMS rode the outage out
        assert server.process.returncode is None

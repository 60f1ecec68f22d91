"""``chargeflow serve`` killed with SIGKILL mid-transaction restarts with every acknowledged message."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

TOKEN = "crash-test-token"


@asynccontextmanager
async def serve(db: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, int, int]]:
    env = {
        **os.environ,
        "CHARGEFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "CHARGEFLOW_ADMIN_TOKEN": TOKEN,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chargeflow.cli",
        "serve",
        "--ocpp-port",
        "0",
        "--http-port",
        "0",
        "--auto-register",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    ports: dict[str, int] = {}
    async with asyncio.timeout(30):
        while len(ports) < 2:
            line = (await process.stdout.readline()).decode()
            assert line, "the server stopped before it listened"
            if found := re.match(r"(OCPP|API)\s+\w+://[\d.]+:(\d+)/", line):
                ports[found[1]] = int(found[2])
    try:
        yield process, ports["OCPP"], ports["API"]
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


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

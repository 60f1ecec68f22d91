"""Many simulated stations against a real ``chargeflow serve`` process over loopback.

The server runs as its own process (so its memory can be read from /proc); the stations are raw
OCPP 1.6J websocket clients in this process. All stations connect first and stay connected; then
each, at a moment spread evenly over the ramp, boots, sends a heartbeat and a MeterValues, and the
time to each answer is recorded. Everything is bounded by ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CONNECT_CONCURRENCY = 100


@dataclass
class LoadResult:
    stations: int
    connected: int = 0
    boots_accepted: int = 0
    answers: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    connect_seconds: float = 0.0
    rss_before_kib: int = 0
    rss_connected_kib: int = 0
    rss_after_kib: int = 0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def pct(p: float) -> float:
            return (
                round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2) if ordered else float("nan")
            )

        per_connection = (self.rss_connected_kib - self.rss_before_kib) / max(1, self.connected)
        return {
            "stations": self.stations,
            "connected": self.connected,
            "boots_accepted": self.boots_accepted,
            "answers": self.answers,
            "errors": self.errors,
            "connect_all_s": round(self.connect_seconds, 2),
            "answer_ms_p50": pct(0.50),
            "answer_ms_p95": pct(0.95),
            "answer_ms_p99": pct(0.99),
            "answer_ms_max": round(ordered[-1], 2) if ordered else float("nan"),
            "answer_ms_mean": round(statistics.fmean(ordered), 2) if ordered else float("nan"),
            "server_rss_before_mib": round(self.rss_before_kib / 1024, 1),
            "server_rss_connected_mib": round(self.rss_connected_kib / 1024, 1),
            "server_rss_after_mib": round(self.rss_after_kib / 1024, 1),
            "server_kib_per_connection": round(per_connection, 1),
        }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass(frozen=True, slots=True)
class ServeProcess:
    process: asyncio.subprocess.Process
    ocpp_port: int
    http_port: int


@asynccontextmanager
async def serve_process(
    database_url: str,
    admin_token: str,
    *extra: str,
    start_timeout_s: float = 60.0,
    log: Path | None = None,
) -> AsyncIterator[ServeProcess]:
    """``chargeflow serve --auto-register`` on free loopback ports, as its own process.

    Yields once the server has printed both its ports; stops it on the way out (SIGTERM, then SIGKILL
    after 10 s) unless it has already ended. Its log goes to the file ``log``, or nowhere.
    """
    env = {**os.environ, "CHARGEFLOW_DATABASE_URL": database_url, "CHARGEFLOW_ADMIN_TOKEN": admin_token}
    arguments = ("serve", "--ocpp-port", "0", "--http-port", "0", "--auto-register", *extra)
    log_file = None if log is None else log.open("ab")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chargeflow.cli",
            *arguments,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL if log_file is None else log_file,
        )
    finally:
        if log_file is not None:
            log_file.close()  # the server holds its own copy
    assert process.stdout is not None
    try:
        ports: dict[str, int] = {}
        async with asyncio.timeout(start_timeout_s):
            while len(ports) < 2:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("chargeflow serve stopped before it listened")
                if found := re.match(r"(OCPP|API)\s+\w+://[\d.]+:(\d+)/", line):
                    ports[found[1]] = int(found[2])
        yield ServeProcess(process, ports["OCPP"], ports["API"])
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _ask(
    ws: ClientConnection, message_id: str, action: str, payload: dict[str, Any]
) -> tuple[Any, float]:
    started = time.perf_counter()
    await ws.send(json.dumps([2, message_id, action, payload]))
    answer = json.loads(await ws.recv())
    return answer, (time.perf_counter() - started) * 1000


async def _station(ws: ClientConnection, n: int, delay_s: float, result: LoadResult) -> None:
    await asyncio.sleep(delay_s)
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sample = {"value": str(1000 + n), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
    steps: list[tuple[str, dict[str, Any]]] = [
        ("BootNotification", {"chargePointVendor": "Load", "chargePointModel": "Sim"}),
        ("Heartbeat", {}),
        ("MeterValues", {"connectorId": 1, "meterValue": [{"timestamp": at, "sampledValue": [sample]}]}),
    ]
    for k, (action, payload) in enumerate(steps):
        answer, ms = await _ask(ws, f"{n}-{k}", action, payload)
        if answer[0] != 3:
            result.errors += 1
            continue
        result.answers += 1
        result.latencies_ms.append(ms)
        if action == "BootNotification" and answer[2].get("status") == "Accepted":
            result.boots_accepted += 1


async def run_load(stations: int, ramp_s: float, timeout_s: float) -> LoadResult:
    result = LoadResult(stations)
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite+aiosqlite:///{Path(folder) / 'load.db'}"
        async with serve_process(database, "load-test") as server, AsyncExitStack() as clients:
            pid, port = server.process.pid, server.ocpp_port
            await asyncio.sleep(0.5)
            result.rss_before_kib = rss_kib(pid)
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

            async def open_one(n: int) -> ClientConnection:
                async with gate:
                    return await clients.enter_async_context(
                        connect(
                            f"ws://127.0.0.1:{port}/LOAD-{n:05d}",
                            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                            open_timeout=30,
                            ping_interval=None,
                        )
                    )

            async with asyncio.timeout(timeout_s):
                started = time.perf_counter()
                sockets = await asyncio.gather(*(open_one(n) for n in range(stations)))
                result.connect_seconds = time.perf_counter() - started
                result.connected = len(sockets)
                await asyncio.sleep(1.0)  # let the server settle before reading its memory
                result.rss_connected_kib = rss_kib(pid)
                async with asyncio.TaskGroup() as group:
                    for n, ws in enumerate(sockets):
                        group.create_task(_station(ws, n, ramp_s * n / stations, result))
            result.rss_after_kib = rss_kib(pid)
    return result

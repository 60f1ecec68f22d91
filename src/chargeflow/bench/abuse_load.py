"""Abusive clients against a real ``chargeflow serve`` process, and what well-behaved stations see meanwhile.

Issue 13, item 6: three clients that send 1 MiB OCPP frames and never read their answers, and HTTP bodies of
100 MiB (one with its length declared, one chunked), while a few normal stations send Heartbeats and time the
answers. The server runs as its own process so that its memory can be read from /proc; everything speaks over
loopback and is bounded by ``attack_s`` and ``timeout_s``.

The figures: the server's RSS before, at its highest during the attack and after; the normal stations' p50
and p99 round trip; how many abusive frames were sent and how many connections the server closed for them;
the HTTP status each large body got and how much of it the server took before answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chargeflow.bench.ocpp_load import rss_kib, serve_process

MIB = 1024 * 1024
HTTP_CHUNK = 64 * 1024


@dataclass
class AbuseResult:
    rss_before_kib: int = 0
    rss_max_kib: int = 0
    rss_after_kib: int = 0
    server_cpu_s: float = 0.0  # the server's CPU time (user and system) during the attack
    attack_s: float = 0.0
    reconnect_s: float = 0.0
    killed_at_mib: int | None = None  # the server passed the bench's memory guard and was killed
    normal_latencies_ms: list[float] = field(default_factory=list)
    normal_errors: int = 0
    abusive_frames_sent: int = 0
    abusive_connections: int = 0
    abusive_closed_1009: int = 0
    http: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.normal_latencies_ms)

        def pct(p: float) -> float:
            return (
                round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2) if ordered else float("nan")
            )

        return {
            "server_rss_before_mib": round(self.rss_before_kib / 1024, 1),
            "server_rss_max_mib": round(self.rss_max_kib / 1024, 1),
            "server_rss_after_mib": round(self.rss_after_kib / 1024, 1),
            "server_cpu_s": round(self.server_cpu_s, 2),
            "attack_s": self.attack_s,
            "abuser_reconnect_s": self.reconnect_s,
            "server_killed_over_mib": self.killed_at_mib,
            "normal_answers": len(ordered),
            "normal_errors": self.normal_errors,
            "normal_ms_p50": pct(0.50),
            "normal_ms_p99": pct(0.99),
            "normal_ms_max": round(ordered[-1], 2) if ordered else float("nan"),
            "abusive_frames_sent": self.abusive_frames_sent,
            "abusive_connections": self.abusive_connections,
            "abusive_closed_1009": self.abusive_closed_1009,
            "http_large_bodies": self.http,
        }


def cpu_seconds(pid: int) -> float:
    """A process's user and system CPU time so far, from /proc (fields 14 and 15 of its stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def meter_values_frame(size_bytes: int, message_id: str) -> str:
    """A 1.6 MeterValues CALL of about ``size_bytes``, made of many small sampled values."""
    sample = '{"value":"1000","measurand":"Energy.Active.Import.Register","unit":"Wh"}'
    count = max(1, (size_bytes - 120) // (len(sample) + 1))
    samples = ",".join([sample] * count)
    return (
        f'[2,"{message_id}","MeterValues",{{"connectorId":1,"meterValue":'
        f'[{{"timestamp":"2026-01-01T00:00:00Z","sampledValue":[{samples}]}}]}}]'
    )


def _open(port: int, station_id: str) -> Any:
    return connect(
        f"ws://127.0.0.1:{port}/{station_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        open_timeout=10,
        ping_interval=None,
        max_size=None,
        close_timeout=1,
    )


async def _abuser(
    port: int, n: int, frame_bytes: int, until: float, reconnect_s: float, result: AbuseResult
) -> None:
    """Sends big frames and never reads; when the server closes the connection, connects again after
    ``reconnect_s``."""
    frame = meter_values_frame(frame_bytes, f"abuse-{n}")
    attempt = 0
    while time.monotonic() < until:
        attempt += 1
        try:
            async with _open(port, f"ABUSE-{n}") as ws:
                result.abusive_connections += 1
                while time.monotonic() < until:
                    left = until - time.monotonic()
                    await asyncio.wait_for(ws.send(frame), max(0.01, left))
                    result.abusive_frames_sent += 1
        except ConnectionClosed as closed:
            if closed.rcvd is not None and closed.rcvd.code == 1009:
                result.abusive_closed_1009 += 1
        except (TimeoutError, OSError, InvalidStatus):
            pass
        await asyncio.sleep(reconnect_s)


async def _normal_stations(port: int, stations: int, start: float, until: float, result: AbuseResult) -> None:
    """Connects and boots the stations, then each sends a Heartbeat every 0.1 s from ``start`` to ``until``
    and times the answer."""
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(_open(port, f"NORMAL-{n}")) for n in range(stations)]
        for n, ws in enumerate(sockets):
            boot = {"chargePointVendor": "Bench", "chargePointModel": "Normal"}
            await ws.send(json.dumps([2, f"boot-{n}", "BootNotification", boot]))
            await ws.recv()
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        async with asyncio.TaskGroup() as group:
            for n, ws in enumerate(sockets):
                group.create_task(_normal(ws, n, until, result))


async def _normal(ws: ClientConnection, n: int, until: float, result: AbuseResult) -> None:
    k = 0
    while time.monotonic() < until:
        k += 1
        started = time.perf_counter()
        await ws.send(json.dumps([2, f"n{n}-{k}", "Heartbeat", {}]))
        try:
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        except TimeoutError:
            result.normal_errors += 1
            continue
        if answer[0] == 3:
            result.normal_latencies_ms.append((time.perf_counter() - started) * 1000)
        else:
            result.normal_errors += 1
        await asyncio.sleep(0.1)


def _http_large_body(port: int, body_bytes: int, chunked: bool, timeout_s: float) -> dict[str, Any]:
    """POST a large body to ``/api/stations`` without a token; what the server answered, how much it took.

    A plain socket, so that the body keeps coming as a client would send it while the answer is awaited.
    """
    headers = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {body_bytes}"
    request = (
        "POST /api/stations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\n{headers}\r\n\r\n"
    )
    chunk = b"x" * HTTP_CHUNK
    if chunked:
        chunk = f"{HTTP_CHUNK:x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    pending = b""
    answer = b""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(request.encode())
        sock.setblocking(False)
        while not answer and time.monotonic() < deadline:
            try:
                answer = sock.recv(65536) or b"closed"
                break
            except BlockingIOError:
                pass
            except OSError:
                break
            if not pending:
                if sent >= body_bytes:
                    pending = b"0\r\n\r\n" if chunked else b""
                    if not pending:
                        time.sleep(0.01)
                        continue
                else:
                    pending = chunk
                    sent += HTTP_CHUNK
            try:
                pending = pending[sock.send(pending) :]
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:  # the server closed the connection
                break
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in answer:
                more = sock.recv(65536)
                if not more:
                    break
                answer += more
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    return {
        "body_mib": round(body_bytes / MIB, 1),
        "chunked": chunked,
        "status": status,
        "sent_before_answer_kib": sent // 1024,
        "answer_s": round(time.perf_counter() - started, 3),
    }


async def run_abuse(
    abusers: int = 3,
    frame_bytes: int = 1_000_000,
    normal_stations: int = 5,
    attack_s: float = 6.0,
    http_body_bytes: int = 100 * MIB,
    timeout_s: float = 60.0,
    rss_guard_mib: int = 1500,
    reconnect_s: float = 0.05,
) -> AbuseResult:
    """Start ``chargeflow serve``, connect the normal stations, attack for ``attack_s``, measure.

    A server that passes ``rss_guard_mib`` is killed, so that the bench cannot exhaust a shared machine's
    memory (as the server before the budgets did: 2.3 GB in 5 s)."""
    result = AbuseResult()
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite+aiosqlite:///{Path(folder) / 'abuse.db'}"
        async with serve_process(database, "abuse-test") as server, asyncio.timeout(timeout_s):
            pid = server.process.pid
            await asyncio.sleep(1.0)
            result.rss_before_kib = result.rss_max_kib = rss_kib(pid)
            start = time.monotonic() + 2.0  # the normal stations are connected and booted by then
            until = start + attack_s
            # The normal stations run on an event loop of their own (a thread), so that the abusers'
            # sending in this one does not count in the round trips they measure.
            normal = asyncio.create_task(
                asyncio.to_thread(
                    asyncio.run, _normal_stations(server.ocpp_port, normal_stations, start, until, result)
                )
            )
            await asyncio.sleep(max(0.0, start - time.monotonic()))
            cpu_before = cpu_seconds(pid)
            result.attack_s, result.reconnect_s = attack_s, reconnect_s

            async def watch_memory() -> None:
                while time.monotonic() < until + 1.0:
                    result.rss_max_kib = max(result.rss_max_kib, rss_kib(pid))
                    if result.rss_max_kib > rss_guard_mib * 1024 and result.killed_at_mib is None:
                        result.killed_at_mib = rss_guard_mib
                        server.process.kill()
                    await asyncio.sleep(0.05)

            async def large_bodies() -> None:
                for chunked in (False, True):
                    result.http.append(
                        await asyncio.to_thread(
                            _http_large_body, server.http_port, http_body_bytes, chunked, attack_s
                        )
                    )

            async with asyncio.TaskGroup() as group:
                group.create_task(watch_memory())
                group.create_task(large_bodies())
                for n in range(abusers):
                    group.create_task(_abuser(server.ocpp_port, n, frame_bytes, until, reconnect_s, result))
            result.server_cpu_s = cpu_seconds(pid) - cpu_before
            await normal
            await asyncio.sleep(1.0)  # what the server does after the abusers have gone
            result.rss_after_kib = rss_kib(pid)
    return result

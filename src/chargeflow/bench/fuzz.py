"""``chargeflow bench fuzz``: a longer fuzz run against ``chargeflow serve`` as its own process.

Fuzzing stations (OCPP 1.6 and 2.0.1) send CALL frames drawn from the schemas for every action the
CSM routes, half of them bent once (see ``fuzz_frames``), a few with an action no version defines,
one at a time as fast as the answers come. A normal 1.6 station sends a heartbeat every 50 ms meanwhile,
and its round trips give the p99 that other stations see during the run. A crash is any of: a fuzzing
connection closed by the server, an answer of the wrong kind (not a CALLRESULT or CALLERROR for the
frame's id, an InternalError, or none within the timeout), or an exception in the server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from chargeflow.bench.fuzz_frames import PayloadGenerator, load_schema
from chargeflow.bench.ocpp_load import rss_kib, serve_process

# The actions a station may send the CSM (its routes; the fuzz test checks the same list against them).
ACTIONS: Final = {
    "1.6": (
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
    ),
    "2.0.1": (
        "Authorize",
        "BootNotification",
        "ClearedChargingLimit",
        "DataTransfer",
        "FirmwareStatusNotification",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyReport",
        "ReportChargingProfiles",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "StatusNotification",
        "TransactionEvent",
    ),
}
SUBPROTOCOLS: Final = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
ANSWER_TIMEOUT_S: Final = 10.0
HEARTBEAT_EVERY_S: Final = 0.05
UNKNOWN_ACTION_SHARE: Final = 0.02


@dataclass(slots=True)
class FuzzResult:
    seconds: float
    seed: int
    frames_sent: int = 0
    bent: int = 0
    answers: Counter[str] = field(default_factory=Counter)  # "CALLRESULT" or the CALLERROR's code
    connections_closed: int = 0
    wrong_answers: list[str] = field(default_factory=list)
    server_exceptions: Counter[str] = field(default_factory=Counter)  # "what failed: exception type"
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    heartbeat_ms: list[float] = field(default_factory=list)

    @property
    def crashes(self) -> int:
        return self.connections_closed + len(self.wrong_answers) + self.server_exceptions.total()

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.heartbeat_ms) or [float("nan")]
        return {
            "seconds": self.seconds,
            "seed": self.seed,
            "frames_sent": self.frames_sent,
            "frames_bent": self.bent,
            "answers": dict(self.answers.most_common()),
            "crashes": self.crashes,
            "connections_closed": self.connections_closed,
            "wrong_answers": len(self.wrong_answers),
            "wrong_answer_examples": self.wrong_answers[:5],
            "server_exceptions": self.server_exceptions.total(),
            "server_exception_kinds": dict(self.server_exceptions.most_common()),
            "server_rss_before_mib": round(self.rss_before_kib / 1024, 1),
            "server_rss_after_mib": round(self.rss_after_kib / 1024, 1),
            "normal_station_heartbeats": len(self.heartbeat_ms),
            "normal_station_p50_ms": round(statistics.median(ordered), 1),
            "normal_station_p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        }


async def _answer(ws: ClientConnection, message_id: str) -> list[Any]:
    """The answer to ``message_id``; the CSM's own CALLs (after a boot) are left unanswered, and a late
    answer to an earlier frame (one counted as unanswered) is skipped."""
    while True:
        frame = json.loads(await ws.recv())
        if not isinstance(frame, list):
            raise ValueError(f"not a frame: {str(frame)[:80]}")
        if frame and frame[0] == 2:
            continue
        if len(frame) >= 2 and frame[0] in (3, 4) and frame[1] != message_id:
            continue
        return frame


def _check(frame: list[Any], message_id: str, result: FuzzResult, sent: str) -> None:
    if len(frame) == 3 and frame[0] == 3 and frame[1] == message_id and isinstance(frame[2], dict):
        result.answers["CALLRESULT"] += 1
    elif len(frame) == 5 and frame[0] == 4 and frame[1] == message_id and frame[2] != "InternalError":
        result.answers[str(frame[2])] += 1
    else:
        result.wrong_answers.append(f"{json.dumps(frame)[:120]} to {sent}")


async def _fuzzer(
    url: str, version: str, seed: int, deadline: float, result: FuzzResult, counter: itertools.count[int]
) -> None:
    rng = random.Random(seed)
    generators = {a: PayloadGenerator(load_schema(version, a), rng) for a in ACTIONS[version]}
    while time.monotonic() < deadline:
        try:
            async with connect(url, subprotocols=[Subprotocol(SUBPROTOCOLS[version])], max_size=None) as ws:
                while time.monotonic() < deadline:
                    action = rng.choice(ACTIONS[version])
                    payload, bent = generators[action].payload()
                    if rng.random() < UNKNOWN_ACTION_SHARE:
                        action = "NoSuchAction"
                    message_id = f"f{next(counter)}"
                    await ws.send(json.dumps([2, message_id, action, payload]))
                    result.frames_sent += 1
                    result.bent += bent
                    sent = f"{action} {json.dumps(payload)[:300]}"
                    try:
                        frame = await asyncio.wait_for(_answer(ws, message_id), ANSWER_TIMEOUT_S)
                    except TimeoutError:
                        result.wrong_answers.append(f"no answer within {ANSWER_TIMEOUT_S:g} s to {sent}")
                        continue
                    except ValueError as err:
                        result.wrong_answers.append(f"{err} to {sent}")
                        continue
                    _check(frame, message_id, result, sent)
        except (ConnectionClosed, TimeoutError, OSError):  # closed, or no handshake within the timeout
            if time.monotonic() < deadline:
                result.connections_closed += 1
                await asyncio.sleep(0.5)


async def _normal_station(url: str, deadline: float, result: FuzzResult) -> None:
    """Heartbeats every 50 ms; one unanswered within the timeout counts as a crash, at the timeout."""
    counter = itertools.count()
    while time.monotonic() < deadline:
        try:
            async with connect(url, subprotocols=[Subprotocol("ocpp1.6")]) as ws:
                boot = {"chargePointVendor": "Bench", "chargePointModel": "Normal"}
                await ws.send(json.dumps([2, "boot", "BootNotification", boot]))
                await asyncio.wait_for(_answer(ws, "boot"), ANSWER_TIMEOUT_S)
                while time.monotonic() < deadline:
                    message_id = f"hb{next(counter)}"
                    started = time.perf_counter()
                    await ws.send(json.dumps([2, message_id, "Heartbeat", {}]))
                    try:
                        frame = await asyncio.wait_for(_answer(ws, message_id), ANSWER_TIMEOUT_S)
                    except TimeoutError:
                        frame = [None]
                        result.wrong_answers.append(
                            f"normal station: no heartbeat answer in {ANSWER_TIMEOUT_S:g} s"
                        )
                    result.heartbeat_ms.append((time.perf_counter() - started) * 1000)
                    if frame[0] != 3 and frame[0] is not None:
                        result.wrong_answers.append(f"normal station: {json.dumps(frame)[:200]}")
                    await asyncio.sleep(HEARTBEAT_EVERY_S)
        except (ConnectionClosed, TimeoutError, OSError):
            if time.monotonic() < deadline:
                result.connections_closed += 1
                await asyncio.sleep(0.5)


def exceptions_in_log(log_text: str) -> Counter[str]:
    """The errors the server logged with a traceback, by what failed and the exception's type."""
    found: Counter[str] = Counter()
    lines = log_text.splitlines()
    for at, line in enumerate(lines):
        if not line.startswith("Traceback (most recent call last)"):
            continue
        what = lines[at - 1].split(": ", 1)[-1] if at else "?"
        kind = next((x.split(":")[0] for x in lines[at + 1 :] if x and not x[0].isspace() and ":" in x), "?")
        found[f"{what}: {kind}"] += 1
    return found


async def run_fuzz(seconds: float, seed: int, per_version: int = 1) -> FuzzResult:
    """Fuzz ``chargeflow serve`` (SQLite) for ``seconds`` with ``per_version`` fuzzing stations each."""
    result = FuzzResult(seconds, seed)
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite+aiosqlite:///{Path(folder) / 'fuzz.db'}"
        log = Path(folder) / "serve.log"
        # the fuzzing stations send as fast as they are answered: the rate budget lifted (the others hold)
        unthrottled = ("--station-messages-per-s", "1000000")
        async with serve_process(database, "fuzz-bench", *unthrottled, log=log) as server:
            pid, base = server.process.pid, f"ws://127.0.0.1:{server.ocpp_port}"
            await asyncio.sleep(0.5)  # let the server settle before the first reading
            result.rss_before_kib = rss_kib(pid)
            deadline = time.monotonic() + seconds
            counter = itertools.count()
            async with asyncio.TaskGroup() as group:
                group.create_task(_normal_station(f"{base}/NORMAL-1", deadline, result))
                for k, version in enumerate([v for v in SUBPROTOCOLS for _ in range(per_version)], start=1):
                    url = f"{base}/FUZZ-{k}"
                    group.create_task(_fuzzer(url, version, seed * 1000 + k, deadline, result, counter))
            result.rss_after_kib = rss_kib(pid)
            if server.process.returncode is not None:
                result.wrong_answers.append(f"server exited with {server.process.returncode}")
        with contextlib.suppress(OSError):
            result.server_exceptions = exceptions_in_log(log.read_text(errors="replace"))
    return result

"""Throughput of the OCPP receive → validate → handle → store → answer path, beside the ``ocpp``
library's own ``route_message`` (with its default validation) on the same frames in the same run.

Frames go through an in-memory transport, so both paths are measured without the network: ours
through ``StationConnection`` with the real handlers, the CSM service and the SQL repository on a
SQLite file (WAL), the library's through ``ChargePoint.route_message`` with a handler that answers.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ocpp.v16
import ocpp.v201
from ocpp.v16 import call_result as result16
from ocpp.v201 import call_result as result201

from chargeflow.clock import SystemClock
from chargeflow.csm.model import StartRequest
from chargeflow.csm.service import CsmConfig, CsmService
from chargeflow.protocols.ocpp.budgets import OcppBudgets
from chargeflow.protocols.ocpp.connection import ConnectionOptions, Handler, StationConnection
from chargeflow.protocols.ocpp.frames import OcppVersion
from chargeflow.protocols.ocpp.handlers2 import V2Handlers
from chargeflow.protocols.ocpp.handlers16 import V16Handlers
from chargeflow.protocols.ocpp.schemas import SchemaRegistry
from chargeflow.store.database import make_engine, migrate
from chargeflow.store.sql import SqlRepository

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def meter_values_frames(station: int, transaction_id: int, count: int) -> list[str]:
    frames = []
    for n in range(count):
        at = _iso(T0 + timedelta(seconds=n))
        sampled = [
            {"value": str(1000 + n), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "10.4", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
        ]
        payload = {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [{"timestamp": at, "sampledValue": sampled}],
        }
        frames.append(json.dumps([2, f"s{station}-{n}", "MeterValues", payload]))
    return frames


def transaction_event_frames(station: int, count: int) -> list[str]:
    frames = []
    for n in range(count):
        at = _iso(T0 + timedelta(seconds=n))
        payload = {
            "eventType": "Started" if n == 0 else "Updated",
            "timestamp": at,
            "triggerReason": "CablePluggedIn" if n == 0 else "MeterValuePeriodic",
            "seqNo": n,
            "transactionInfo": {"transactionId": f"TX-{station}", "chargingState": "Charging"},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [
                {
                    "timestamp": at,
                    "sampledValue": [
                        {
                            "value": 1000 + n,
                            "measurand": "Energy.Active.Import.Register",
                            "unitOfMeasure": {"unit": "Wh"},
                        },
                        {"value": 7200, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
                    ],
                }
            ],
        }
        frames.append(json.dumps([2, f"s{station}-{n}", "TransactionEvent", payload]))
    return frames


# The path's own cost is measured, as the library's is: no station's messages are delayed for its rate.
UNTHROTTLED = ConnectionOptions(budgets=OcppBudgets(messages_per_s=1e9, burst=1_000_000))


class FrameFeed:
    """An in-memory websocket: hands out the frames, counts the answers, then closes."""

    def __init__(self, frames: list[str]) -> None:
        self._frames: Iterator[str] = iter(frames)
        self._expected = len(frames)
        self.answers: list[str] = []
        self.done = asyncio.Event()

    async def recv(self) -> str:
        for frame in self._frames:
            return frame
        await self.done.wait()
        raise EOFError("feed exhausted")

    async def send(self, message: str) -> None:
        self.answers.append(message)
        if len(self.answers) == self._expected:
            self.done.set()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.done.set()


@dataclass(frozen=True, slots=True)
class PathResult:
    messages: int
    seconds: float
    errors: int

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


async def _ours(
    version: OcppVersion, frames_for: Callable[[int, int], list[str]], stations: int
) -> PathResult:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
        try:
            await migrate(engine)
            async with SqlRepository.open(engine) as repository:
                return await _drive_ours(repository, version, frames_for, stations)
        finally:
            await engine.dispose()


async def _drive_ours(
    repository: SqlRepository,
    version: OcppVersion,
    frames_for: Callable[[int, int], list[str]],
    stations: int,
) -> PathResult:
    service = CsmService(repository, SystemClock(), CsmConfig(auto_register=True), new_salt=lambda: b"bench")
    routes: dict[str, Handler] = (
        V16Handlers(service).routes() if version is OcppVersion.V16 else V2Handlers(service).routes()
    )
    schemas = SchemaRegistry()
    feeds = []
    for s in range(stations):
        await service.register_station(f"B{s}", None)
        tx_id, _ = await service.start_transaction(StartRequest(f"B{s}", 1, "TAG", 1000, T0))
        feeds.append(FrameFeed(frames_for(s, tx_id)))
    connections = [
        StationConnection(f"B{s}", version, feed, routes, schemas, lambda: "unused", UNTHROTTLED)
        for s, feed in enumerate(feeds)
    ]
    for c in connections:  # compile the schemas outside the timed part, as a running server has
        c.validate_schema_ahead()
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for c in connections:
            group.create_task(c.run())
    seconds = time.perf_counter() - started
    answers = [json.loads(a) for feed in feeds for a in feed.answers]
    return PathResult(len(answers), seconds, sum(1 for a in answers if a[0] != 3))


class _Sink:
    def __init__(self) -> None:
        self.answers: list[str] = []

    async def send(self, message: str) -> None:
        self.answers.append(message)

    async def recv(self) -> str:
        raise EOFError


async def _library(
    version: OcppVersion, frames_for: Callable[[int, int], list[str]], stations: int
) -> PathResult:
    points = []
    for s in range(stations):
        sink = _Sink()
        if version is OcppVersion.V16:
            point = ocpp.v16.ChargePoint(f"L{s}", sink)
            point.route_map = {"MeterValues": {"_on_action": lambda **_: result16.MeterValues()}}
        else:
            point = ocpp.v201.ChargePoint(f"L{s}", sink)
            point.route_map = {"TransactionEvent": {"_on_action": lambda **_: result201.TransactionEvent()}}
        points.append((point, sink, frames_for(s, 1)))
    # Warm the library's validator cache as ours is warmed.
    await points[0][0].route_message(points[0][2][0])
    points[0][1].answers.clear()

    async def drive(point: Any, frames: list[str]) -> None:
        for frame in frames:
            await point.route_message(frame)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for point, _, frames in points:
            group.create_task(drive(point, frames))
    seconds = time.perf_counter() - started
    answers = [json.loads(a) for _, sink, _ in points for a in sink.answers]
    return PathResult(len(answers), seconds, sum(1 for a in answers if a[0] != 3))


async def compare(messages: int, stations: int) -> dict[str, Any]:
    """Both paths for MeterValues (1.6) and TransactionEvent (2.0.1) on the same frames."""
    per_station = max(1, messages // stations)
    cases: list[tuple[str, OcppVersion, Callable[[int, int], list[str]]]] = [
        ("MeterValues 1.6", OcppVersion.V16, lambda s, tx: meter_values_frames(s, tx, per_station)),
        ("TransactionEvent 2.0.1", OcppVersion.V201, lambda s, tx: transaction_event_frames(s, per_station)),
    ]
    out: dict[str, Any] = {}
    for name, version, frames_for in cases:
        ours = await _ours(version, frames_for, stations)
        library = await _library(version, frames_for, stations)
        out[name] = {
            "messages": ours.messages,
            "stations": stations,
            "chargeflow_msgs_per_s": round(ours.per_second),
            "chargeflow_errors": ours.errors,
            "library_route_message_msgs_per_s": round(library.per_second),
            "library_errors": library.errors,
            "ratio": round(ours.per_second / library.per_second, 2),
        }
    return out

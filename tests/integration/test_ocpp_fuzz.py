"""Fuzzing over the wire: CALL frames drawn from the OCPP schemas, sent over a websocket to a CSM on loopback.

For every action the CSM accepts, in 1.6 and 2.0.1, the fuzz generator draws schema-valid payloads from the
schemas and bends some of them once (a field left out, a wrong type, an out-of-range number, an odd
string…), from a random source that hypothesis provides (hypothesis-jsonschema 0.23 does not run on
hypothesis 6.170: it uses an internal API that hypothesis has since removed). Every frame must be
answered with a CALLRESULT or CALLERROR for its message id, never an InternalError; the connection must
stay open, and another station's heartbeat must still be answered within a second.
The CSM runs on its own event loop in a thread, as a server does, so the test speaks to it over a real
socket with a plain blocking client; each run is bounded by ``max_examples`` and a per-frame deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from chargeflow.bench.fuzz import ACTIONS, exceptions_in_log, run_fuzz
from chargeflow.bench.fuzz_frames import PayloadGenerator, load_schema
from chargeflow.clock import SystemClock
from chargeflow.csm.service import CsmConfig, CsmService
from chargeflow.protocols.ocpp.budgets import OcppBudgets
from chargeflow.protocols.ocpp.handlers2 import V2Handlers
from chargeflow.protocols.ocpp.handlers16 import V16Handlers
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.app import build_csm
from chargeflow.store.memory import MemoryRepository

VERSIONS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
HEARTBEAT_WITHIN_S = 1.0
ANSWER_TIMEOUT_S = 10.0


def accepted_actions(version: str) -> list[str]:
    """The actions the CSM routes for the version: the ones a station may send it."""
    service = CsmService(MemoryRepository(), SystemClock(), CsmConfig(), lambda: b"0" * 16)
    handlers = V16Handlers(service) if version == "1.6" else V2Handlers(service)
    return sorted(handlers.routes())


@dataclass
class ServerThread:
    """A CSM (memory repository) with its OCPP endpoint on a free loopback port, on its own loop."""

    port: int = 0
    crashes: list[str] = field(default_factory=list)  # handler exceptions from the server's log


class _Crashes(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None:
            self._into.append(record.getMessage())


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    state = ServerThread()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        built = build_csm(
            MemoryRepository(),
            SystemClock(),
            CsmConfig(auto_register=True),
            OcppServerConfig(
                host="127.0.0.1",
                port=0,
                call_timeout_s=1.0,
                handler_timeout_s=5.0,
                # the fuzzing station sends its 400 frames as fast as they are answered: no rate budget,
                # so that the test measures what the frames do, not the delay (the other budgets hold)
                budgets=OcppBudgets(messages_per_s=1e9, burst=1_000_000),
            ),
            operation_timeout_s=1.0,
        )
        serving = asyncio.create_task(built.ocpp.serve())
        await built.ocpp.started.wait()
        assert built.ocpp.port is not None
        state.port = built.ocpp.port
        ready.set()
        await stop.wait()
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)

    handler = _Crashes(state.crashes)
    logging.getLogger("chargeflow").addHandler(handler)
    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the CSM did not start"
    try:
        yield state
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        logging.getLogger("chargeflow").removeHandler(handler)


_ids = itertools.count()


def ask(ws: ClientConnection, action: str, payload: Any) -> list[Any]:
    """Send one CALL and return the answer with its message id (CALLs from the CSM are left unanswered)."""
    message_id = f"fz-{next(_ids)}"
    ws.send(json.dumps([2, message_id, action, payload]))
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if isinstance(frame, list) and frame and frame[0] == 2:
            continue  # the CSM asking the station something (after a boot): not the answer
        assert isinstance(frame, list), frame
        assert len(frame) >= 3, frame
        assert frame[1] == message_id, frame
        return frame


def assert_answered(frame: list[Any]) -> None:
    kind = frame[0]
    assert kind in (3, 4), frame
    if kind == 3:
        assert len(frame) == 3, frame
        assert isinstance(frame[2], dict), frame
    else:
        assert len(frame) == 5, frame
        assert isinstance(frame[2], str), frame
        assert isinstance(frame[4], dict), frame


def heartbeat_round_trip_s(port: int, version: str, station_id: str) -> float:
    with connect(f"ws://127.0.0.1:{port}/{station_id}", subprotocols=[Subprotocol(VERSIONS[version])]) as ws:
        started = time.perf_counter()
        answer = ask(ws, "Heartbeat", {})
        elapsed = time.perf_counter() - started
        assert answer[0] == 3, answer
        return elapsed


def payloads(version: str) -> st.SearchStrategy[tuple[str, Any, bool]]:
    """(action, payload, bent): a schema-valid payload, or one bent once by the fuzz generator."""

    schemas = {action: load_schema(version, action) for action in accepted_actions(version)}

    def draw(action: str, rng: random.Random) -> tuple[str, Any, bool]:
        payload, bent = PayloadGenerator(schemas[action], rng).payload(invalid_share=0.5)
        return action, payload, bent

    return st.builds(draw, st.sampled_from(sorted(schemas)), st.randoms(use_true_random=False))


@pytest.mark.parametrize("version", list(VERSIONS))
def test_every_fuzzed_frame_is_answered_and_the_connection_stays_open(
    server: ServerThread, version: str
) -> None:
    station_id = f"FUZZ-{version.replace('.', '')}"
    sent: list[tuple[str, bool, int | str]] = []
    with connect(
        f"ws://127.0.0.1:{server.port}/{station_id}",
        subprotocols=[Subprotocol(VERSIONS[version])],
        max_size=None,
    ) as ws:

        @settings(
            max_examples=400,
            deadline=timedelta(seconds=5),  # one frame's round trip; generous for a busy machine
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
            derandomize=True,  # the same frames in every run of the suite; `chargeflow bench fuzz` explores
        )
        @given(payloads(version))
        def one_frame(drawn: tuple[str, Any, bool]) -> None:
            action, payload, bent = drawn
            answer = ask(ws, action, payload)
            assert_answered(answer)
            sent.append((action, bent, answer[2] if answer[0] == 4 else "ok"))

        started = time.perf_counter()
        one_frame()
        fuzz_s = time.perf_counter() - started
        assert_answered(ask(ws, "Heartbeat", {}))  # the fuzzed connection is still open and served
    assert heartbeat_round_trip_s(server.port, version, f"{station_id}-OTHER") < HEARTBEAT_WITHIN_S
    valid_refused = sorted({(a, code) for a, bent, code in sent if not bent and code != "ok"})
    print(
        f"\n{version}: {len(sent)} frames in {fuzz_s:.1f} s, {sum(b for _, b, _ in sent)} bent, "
        f"schema-valid ones refused: {valid_refused}, handler exceptions: {len(server.crashes)}, "
        f"answers: {dict(Counter(code for _, _, code in sent))}"
    )
    assert len(sent) == 400
    # A frame may be refused for what it carries, never by a handler that failed on it.
    assert "InternalError" not in {code for _, _, code in sent}
    assert server.crashes == []


@pytest.mark.parametrize("version", list(VERSIONS))
def test_the_longer_fuzz_run_sends_every_action_the_csm_routes(version: str) -> None:
    assert sorted(ACTIONS[version]) == accepted_actions(version)


def test_the_longer_fuzz_run_reads_exceptions_from_the_server_log() -> None:
    log = "\n".join(
        [
            "2026-01-01 00:00:00 WARNING x: S1: malformed frame answered with FormatViolation: y",
            "2026-01-01 00:00:01 ERROR chargeflow.x: S2: handler for MeterValues failed",
            "Traceback (most recent call last):",
            '  File "a.py", line 1, in f',
            "    g()",
            "OverflowError: Python int too large to convert to SQLite INTEGER",
        ]
    )
    assert exceptions_in_log(log) == Counter({"S2: handler for MeterValues failed: OverflowError": 1})


async def test_the_longer_fuzz_run_reports_its_figures() -> None:
    """`chargeflow bench fuzz` in small: a serve process, 3 s of fuzzing, the figures it prints."""
    result = await run_fuzz(3.0, seed=7)
    figures = result.summary()
    assert figures["frames_sent"] > 50
    assert figures["frames_sent"] == sum(figures["answers"].values()) + figures["wrong_answers"]
    assert figures["normal_station_heartbeats"] > 5
    assert figures["server_rss_before_mib"] > 0
    assert figures["server_rss_after_mib"] > 0
    assert figures["crashes"] == result.crashes

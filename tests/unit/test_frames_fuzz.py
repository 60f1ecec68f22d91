"""Whatever a station sends, the answer is a well-formed CALLRESULT or CALLERROR, never a crash."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chargeflow.clock import ManualClock
from chargeflow.csm.service import CsmConfig, CsmService
from chargeflow.protocols.ocpp.connection import ConnectionOptions, StationConnection
from chargeflow.protocols.ocpp.frames import Call, FrameError, OcppVersion, parse_frame
from chargeflow.protocols.ocpp.handlers2 import V2Handlers
from chargeflow.protocols.ocpp.handlers16 import V16Handlers
from chargeflow.protocols.ocpp.schemas import SchemaRegistry
from chargeflow.store.memory import MemoryRepository
from tests.transports import NullTransport

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_parse_frame_returns_a_frame_or_a_frame_error(text: str) -> None:
    outcome: object
    try:
        outcome = parse_frame(text)
    except FrameError as err:
        outcome = err
    if isinstance(outcome, FrameError):
        assert outcome.message_id
        assert outcome.description


SCHEMAS = SchemaRegistry()
ACTIONS_16 = [
    "BootNotification",
    "StartTransaction",
    "StopTransaction",
    "MeterValues",
    "StatusNotification",
    "Authorize",
]
ACTIONS_2 = [
    "BootNotification",
    "TransactionEvent",
    "MeterValues",
    "NotifyEVChargingNeeds",
    "StatusNotification",
]


def connection(version: OcppVersion) -> StationConnection:
    service = CsmService(
        MemoryRepository(),
        ManualClock(datetime(2026, 1, 1, tzinfo=UTC)),
        CsmConfig(),
        new_salt=lambda: b"s" * 16,
    )
    routes = V16Handlers(service).routes() if version is OcppVersion.V16 else V2Handlers(service).routes()
    return StationConnection(
        "FUZZ", version, NullTransport(), routes, SCHEMAS, lambda: "id", ConnectionOptions()
    )


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([OcppVersion.V16, OcppVersion.V201]),
    st.data(),
    st.dictionaries(st.text(max_size=20), json_values, max_size=6),
)
def test_any_payload_is_answered_with_result_or_error(
    version: OcppVersion, data: st.DataObject, payload: dict[str, Any]
) -> None:
    action = data.draw(st.sampled_from(ACTIONS_16 if version is OcppVersion.V16 else ACTIONS_2))
    answer = json.loads(asyncio.run(connection(version).answer(Call("m1", action, payload))))
    assert answer[1] == "m1"
    assert answer[0] in (3, 4)
    if answer[0] == 4:
        assert answer[2] != "InternalError", answer


timestamps = st.from_regex(
    r"\A20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](\.[0-9]{1,6})?(Z|[+-][01][0-9]:[0-5][0-9])?\Z"
)


@settings(max_examples=150, deadline=None)
@given(
    timestamps,
    st.text(max_size=30),
    st.sampled_from(["Wh", "kWh", "W", "A"]),
    st.integers(-(2**31), 2**31 - 1),
)
def test_meter_values_with_odd_values_never_crash_the_handler(
    at: str, value: str, unit: str, tx_id: int
) -> None:
    payload = {
        "connectorId": 1,
        "transactionId": tx_id,
        "meterValue": [{"timestamp": at, "sampledValue": [{"value": value, "unit": unit}]}],
    }
    answer = json.loads(asyncio.run(connection(OcppVersion.V16).answer(Call("m", "MeterValues", payload))))
    assert answer[0] == 3 or answer[2] in (
        "TypeConstraintViolation",
        "FormationViolation",
        "PropertyConstraintViolation",
    )


@settings(max_examples=150, deadline=None)
@given(
    timestamps,
    st.integers(0, 2**31 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-3, 3),
)
def test_transaction_events_with_odd_values_never_crash_the_handler(
    at: str, seq: int, value: float, mult: int
) -> None:
    payload = {
        "eventType": "Updated",
        "timestamp": at,
        "triggerReason": "MeterValuePeriodic",
        "seqNo": seq,
        "transactionInfo": {"transactionId": "T"},
        "meterValue": [
            {
                "timestamp": at,
                "sampledValue": [{"value": value, "unitOfMeasure": {"unit": "kWh", "multiplier": mult}}],
            }
        ],
    }
    answer = json.loads(
        asyncio.run(connection(OcppVersion.V201).answer(Call("m", "TransactionEvent", payload)))
    )
    assert answer[0] == 3 or answer[2] in (
        "TypeConstraintViolation",
        "FormatViolation",
        "PropertyConstraintViolation",
    )

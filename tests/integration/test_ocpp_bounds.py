"""Hostile values at the OCPP edge (#13 items 5, 7, 9): refused with the standard's CALLERROR, never an
InternalError, a closed connection or a frozen loop, on every backend (memory, SQLite, PostgreSQL).

Each case is sent as a raw frame over a real loopback websocket; then the same station and another one
must be answered at once (a heartbeat within 1 s), which shows that neither the connection nor the event
loop paid for the value.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chargeflow.runtime.app import CsmNode
from tests.integration.conftest import port_of
from tests.integration.stations import open_ws

NOW = datetime.now(UTC)
TODAY = NOW.strftime("%Y-%m-%d")


def stamp(moment: datetime = NOW) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def start16(**changes: Any) -> dict[str, Any]:
    return {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": stamp(), **changes}


def meter16(value: str, measurand: str = "Power.Active.Import", unit: str = "W") -> dict[str, Any]:
    sample = {"value": value, "measurand": measurand, "unit": unit}
    return {"connectorId": 1, "meterValue": [{"timestamp": stamp(), "sampledValue": [sample]}]}


def meter201(value: float, multiplier: int = 0) -> dict[str, Any]:
    sample = {
        "value": value,
        "measurand": "Energy.Active.Import.Register",
        "unitOfMeasure": {"unit": "Wh", "multiplier": multiplier},
    }
    return {"evseId": 1, "meterValue": [{"timestamp": stamp(), "sampledValue": [sample]}]}


def event201(**changes: Any) -> dict[str, Any]:
    return {
        "eventType": "Started",
        "timestamp": stamp(),
        "triggerReason": "CablePluggedIn",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx-bounds-1"},
        "evse": {"id": 1, "connectorId": 1},
        **changes,
    }


def boot201(vendor: str) -> dict[str, Any]:
    return {"reason": "PowerUp", "chargingStation": {"vendorName": vendor, "model": "M"}}


def call(action: str, payload: dict[str, Any], message_id: str = "x1") -> str:
    return json.dumps([2, message_id, action, payload])


async def exchange(ws: Any, frame: str) -> list[Any]:
    await ws.send(frame)
    answer: list[Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return answer


async def assert_still_served(node: CsmNode, ws: Any, version: str) -> float:
    """The same connection answers a heartbeat, and another station's heartbeat is answered within 1 s."""
    assert (await exchange(ws, '[2, "hb-same", "Heartbeat", {}]'))[:2] == [3, "hb-same"]
    async with open_ws(port_of(node), "OTHER-1", version) as other:
        began = time.perf_counter()
        assert (await exchange(other, '[2, "hb-other", "Heartbeat", {}]'))[:2] == [3, "hb-other"]
        took = time.perf_counter() - began
    print(f"other station's heartbeat answered in {took * 1000:.1f} ms")
    assert took < 1.0
    return took


BIG63 = 2**63
BIG31 = 2**31
TOO_OLD = stamp(NOW - timedelta(days=6 * 366))

HOSTILE = [
    # 5: numbers and moments with no sane bound
    ("ocpp2.0.1", call("MeterValues", meter201(1, 10_000_000)), "PropertyConstraintViolation"),
    ("ocpp2.0.1", call("MeterValues", meter201(1, -10_000_000)), "PropertyConstraintViolation"),
    ("ocpp2.0.1", call("MeterValues", meter201(1e300, 9)), "PropertyConstraintViolation"),
    (
        "ocpp1.6",
        call("StartTransaction", start16(timestamp="9999-12-31T23:59:59Z")),
        "PropertyConstraintViolation",
    ),
    (
        "ocpp1.6",
        call("StartTransaction", start16(timestamp="1970-01-01T00:00:00Z")),
        "PropertyConstraintViolation",
    ),
    (
        "ocpp1.6",
        call("StartTransaction", start16(timestamp="0001-01-01T00:00:00Z")),
        "PropertyConstraintViolation",
    ),
    ("ocpp1.6", call("StartTransaction", start16(timestamp=TOO_OLD)), "PropertyConstraintViolation"),
    (
        "ocpp2.0.1",
        call("TransactionEvent", event201(timestamp="9999-12-31T23:59:59Z")),
        "PropertyConstraintViolation",
    ),
    ("ocpp1.6", call("MeterValues", meter16("NaN")), "PropertyConstraintViolation"),
    ("ocpp1.6", call("MeterValues", meter16("1e400")), "PropertyConstraintViolation"),
    (
        "ocpp1.6",
        call("MeterValues", meter16("5.04e307", "Current.Import", "A")),
        "PropertyConstraintViolation",
    ),
    (
        "ocpp1.6",
        call("MeterValues", meter16("2e9", "Energy.Active.Import.Register", "kWh")),
        "PropertyConstraintViolation",
    ),
    # 9: schema-valid values the database refuses
    ("ocpp1.6", call("StartTransaction", start16(connectorId=BIG63)), "PropertyConstraintViolation"),
    ("ocpp1.6", call("StartTransaction", start16(connectorId=BIG31)), "PropertyConstraintViolation"),
    ("ocpp1.6", call("StartTransaction", start16(meterStart=BIG63)), "PropertyConstraintViolation"),
    ("ocpp1.6", call("StartTransaction", start16(reservationId=BIG31)), "PropertyConstraintViolation"),
    (
        "ocpp1.6",
        call("StopTransaction", {"transactionId": BIG63, "meterStop": 0, "timestamp": stamp()}),
        "PropertyConstraintViolation",
    ),
    ("ocpp1.6", call("MeterValues", {**meter16("1"), "transactionId": BIG31}), "PropertyConstraintViolation"),
    ("ocpp2.0.1", call("TransactionEvent", event201(seqNo=BIG31)), "PropertyConstraintViolation"),
    ("ocpp2.0.1", call("TransactionEvent", event201(evse={"id": BIG63})), "PropertyConstraintViolation"),
    ("ocpp2.0.1", call("MeterValues", {**meter201(1), "evseId": BIG31}), "PropertyConstraintViolation"),
    ("ocpp1.6", call("StartTransaction", start16(idTag="TAG\u0000")), "PropertyConstraintViolation"),
    ("ocpp1.6", call("Authorize", {"idTag": "A\u0000B"}), "PropertyConstraintViolation"),
    ("ocpp2.0.1", call("BootNotification", boot201("Ven\u0000dor")), "PropertyConstraintViolation"),
    (
        "ocpp2.0.1",
        call("TransactionEvent", event201(transactionInfo={"transactionId": "t\u0000x"})),
        "PropertyConstraintViolation",
    ),
    (
        "ocpp1.6",
        call("StartTransaction", start16(timestamp="9999-12-31T23:00:00-05:00")),
        "PropertyConstraintViolation",
    ),
]


@pytest.mark.parametrize(("version", "frame", "code"), HOSTILE)
async def test_hostile_values_get_the_standards_error_and_the_site_is_still_served(
    node: CsmNode, version: str, frame: str, code: str
) -> None:
    async with open_ws(port_of(node), "HOSTILE-1", version) as ws:
        answer = await exchange(ws, frame)
        assert answer[:3] == [4, "x1", code], answer
        await assert_still_served(node, ws, version)


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1"])
@pytest.mark.parametrize(
    ("frame", "message_id", "kind"),
    [
        # 60,000 deep: far past any parser's recursion, within the 128 KiB message budget (a bigger
        # message is closed with 1009 before it is parsed: test_ocpp_budgets.py)
        ("[" * 60_000 + "]" * 60_000, "-1", "format"),
        ('[2, "x1", "Heartbeat", {"a": ' + "[" * 5_000 + "]" * 5_000 + "}]", "-1", "format"),
        ('[2, "\\ud800", "Heartbeat", {}]', "-1", "protocol"),
        ('[2, "x1", "Authorize", {"idTag": "\\udc00"}]', "x1", "format"),
    ],
)
async def test_frames_that_ended_the_connection_get_a_callerror(
    node: CsmNode, version: str, frame: str, message_id: str, kind: str
) -> None:
    codes = {
        ("format", "ocpp1.6"): "FormationViolation",
        ("format", "ocpp2.0.1"): "FormatViolation",
        ("protocol", "ocpp1.6"): "ProtocolError",
        ("protocol", "ocpp2.0.1"): "ProtocolError",
    }
    async with open_ws(port_of(node), "DEEP-1", version) as ws:
        answer = await exchange(ws, frame)
        assert answer[:3] == [4, message_id, codes[(kind, version)]], answer
        await assert_still_served(node, ws, version)


@pytest.mark.parametrize(
    "timestamp",
    [f"{TODAY}T23:59:60Z", f"{TODAY}T23:59:60.5Z", f"{TODAY}t10:00:00z", f"{TODAY}T10:00:00.123+01:00"],
)
async def test_rfc3339_leap_seconds_and_lowercase_are_accepted(node: CsmNode, timestamp: str) -> None:
    async with open_ws(port_of(node), "RFC-1", "ocpp1.6") as ws:
        answer = await exchange(ws, call("StartTransaction", start16(timestamp=timestamp)))
        assert answer[0] == 3, answer
        assert answer[2]["idTagInfo"]["status"] in ("Accepted", "Invalid")
        stop = {"transactionId": answer[2]["transactionId"], "meterStop": 10, "timestamp": timestamp}
        assert (await exchange(ws, call("StopTransaction", stop, "x2")))[0] == 3


@pytest.mark.parametrize(
    ("path", "status"),
    [("/CS%00NUL", 400), ("/" + "L" * 65, 400), ("/CS%01CTRL", 400), ("/%ED%A0%80", 400)],
)
async def test_station_ids_the_database_cannot_hold_are_refused_at_the_handshake(
    node: CsmNode, path: str, status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"ws://127.0.0.1:{port_of(node)}{path}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            open_timeout=5,
        ):
            pass
    assert refused.value.response.status_code == status
    async with open_ws(port_of(node), "AFTER-1", "ocpp1.6") as ws:
        await assert_still_served(node, ws, "ocpp1.6")

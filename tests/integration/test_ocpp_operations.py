"""Operations the CSM sends, checked against both versions' schemas: what goes out and what comes back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from chargeflow.csm.model import AuthStatus, IdTokenRecord
from chargeflow.protocols.ocpp.connection import CallRejected
from chargeflow.protocols.ocpp.operations import StationOperations
from chargeflow.runtime.app import CsmNode
from tests.integration.conftest import port_of
from tests.integration.stations import open_ws

EXPIRY = datetime(2030, 1, 1, tzinfo=UTC)
TOKENS = [IdTokenRecord("A", AuthStatus.ACCEPTED, EXPIRY), IdTokenRecord("B", AuthStatus.BLOCKED)]

Operation = Callable[[StationOperations, str], Awaitable[dict[str, Any]]]


async def answer_of(sent: Awaitable[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """The station's answer of an operation that also returns what it sent."""
    return (await sent)[1]


CASES: list[tuple[str, str, Operation, dict[str, Any], dict[str, Any]]] = [
    (
        "ocpp1.6",
        "SendLocalList",
        lambda ops, sid: ops.send_local_list(sid, 3, TOKENS),
        {"status": "Accepted"},
        {
            "listVersion": 3,
            "updateType": "Full",
            "localAuthorizationList": [
                {"idTag": "A", "idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00.000Z"}},
                {"idTag": "B", "idTagInfo": {"status": "Blocked"}},
            ],
        },
    ),
    (
        "ocpp1.6",
        "GetLocalListVersion",
        lambda ops, sid: ops.get_local_list_version(sid),
        {"listVersion": 3},
        {},
    ),
    (
        "ocpp1.6",
        "ReserveNow",
        lambda ops, sid: ops.reserve_now(sid, 11, 1, "A", EXPIRY),
        {"status": "Accepted"},
        {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00.000Z", "idTag": "A", "reservationId": 11},
    ),
    (
        "ocpp1.6",
        "CancelReservation",
        lambda ops, sid: ops.cancel_reservation(sid, 11),
        {"status": "Accepted"},
        {"reservationId": 11},
    ),
    (
        "ocpp1.6",
        "UnlockConnector",
        lambda ops, sid: ops.unlock(sid, 2),
        {"status": "Unlocked"},
        {"connectorId": 2},
    ),
    (
        "ocpp1.6",
        "ClearChargingProfile",
        lambda ops, sid: ops.clear_charging_profile(sid, 5),
        {"status": "Accepted"},
        {"id": 5},
    ),
    (
        "ocpp1.6",
        "RemoteStopTransaction",
        lambda ops, sid: ops.remote_stop(sid, "42"),
        {"status": "Accepted"},
        {"transactionId": 42},
    ),
    (
        "ocpp1.6",
        "Reset",
        lambda ops, sid: ops.reset(sid, hard=False),
        {"status": "Accepted"},
        {"type": "Soft"},
    ),
    (
        "ocpp1.6",
        "ChangeConfiguration",
        lambda ops, sid: ops.call(sid, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}),
        {"status": "Accepted"},
        {"key": "HeartbeatInterval", "value": "60"},
    ),
    (
        "ocpp1.6",
        "TriggerMessage",
        lambda ops, sid: ops.trigger(sid, "StatusNotification", 1),
        {"status": "Accepted"},
        {"requestedMessage": "StatusNotification", "connectorId": 1},
    ),
    (
        "ocpp1.6",
        "SetChargingProfile",
        lambda ops, sid: answer_of(ops.set_charging_limit(sid, 0, 40.0, "A", "ChargePointMaxProfile", 1)),
        {"status": "Accepted"},
        {
            "connectorId": 0,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "ChargePointMaxProfile",
                # Absolute from a fixed past start: in force at once whatever the station's clock says
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 40.0}],
                    "startSchedule": "2020-01-01T00:00:00.000Z",
                },
            },
        },
    ),
    (
        "ocpp1.6",
        "SetChargingProfile",
        lambda ops, sid: answer_of(
            ops.set_charging_limit(sid, 1, 7400, "W", "TxProfile", 2, transaction_id="17")
        ),
        {"status": "Accepted"},
        {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 2,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7400}],
                },
                "transactionId": 17,
            },
        },
    ),
    (
        "ocpp2.0.1",
        "SetChargingProfile",
        lambda ops, sid: answer_of(
            ops.set_charging_limit(sid, 1, 16, "A", "TxProfile", 3, transaction_id="TX-3")
        ),
        {"status": "Accepted"},
        {
            "evseId": 1,
            "chargingProfile": {
                "id": 3,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": [
                    {
                        "id": 3,
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
                    }
                ],
                "transactionId": "TX-3",
            },
        },
    ),
    (
        "ocpp2.0.1",
        "SendLocalList",
        lambda ops, sid: ops.send_local_list(sid, 4, TOKENS[:1], full=False),
        {"status": "Accepted"},
        {
            "versionNumber": 4,
            "updateType": "Differential",
            "localAuthorizationList": [
                {
                    "idToken": {"idToken": "A", "type": "Central"},
                    "idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": "2030-01-01T00:00:00.000Z"},
                }
            ],
        },
    ),
    (
        "ocpp2.0.1",
        "ReserveNow",
        lambda ops, sid: ops.reserve_now(sid, 12, 1, "A", EXPIRY),
        {"status": "Accepted"},
        {
            "id": 12,
            "expiryDateTime": "2030-01-01T00:00:00.000Z",
            "idToken": {"idToken": "A", "type": "Central"},
            "evseId": 1,
        },
    ),
    (
        "ocpp2.0.1",
        "CancelReservation",
        lambda ops, sid: ops.cancel_reservation(sid, 12),
        {"status": "Accepted"},
        {"reservationId": 12},
    ),
    (
        "ocpp2.0.1",
        "Reset",
        lambda ops, sid: ops.reset(sid, hard=True),
        {"status": "Scheduled"},
        {"type": "Immediate"},
    ),
    (
        "ocpp2.0.1",
        "RequestStopTransaction",
        lambda ops, sid: ops.remote_stop(sid, "TX-9"),
        {"status": "Accepted"},
        {"transactionId": "TX-9"},
    ),
    (
        "ocpp2.0.1",
        "SetVariables",
        lambda ops, sid: ops.call(
            sid,
            "SetVariables",
            {
                "setVariableData": [
                    {
                        "attributeValue": "60",
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            },
        ),
        {
            "setVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                }
            ]
        },
        {
            "setVariableData": [
                {
                    "attributeValue": "60",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                }
            ]
        },
    ),
    (
        "ocpp2.0.1",
        "TriggerMessage",
        lambda ops, sid: ops.trigger(sid, "Heartbeat", None),
        {"status": "Accepted"},
        {"requestedMessage": "Heartbeat"},
    ),
    (
        "ocpp2.0.1",
        "GetChargingProfiles",
        lambda ops, sid: ops.call(
            sid,
            "GetChargingProfiles",
            {"requestId": 1, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}},
        ),
        {"status": "NoProfiles"},
        {"requestId": 1, "chargingProfile": {"chargingProfilePurpose": "TxDefaultProfile"}},
    ),
]


async def answer_one(ws: ClientConnection, answer: dict[str, Any]) -> list[Any]:
    request: list[Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    await ws.send(json.dumps([3, request[1], answer]))
    return request


@pytest.mark.parametrize(
    ("version", "action", "operation", "answer", "expected"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
async def test_operation_sends_the_versions_payload_and_returns_the_answer(
    node: CsmNode,
    version: str,
    action: str,
    operation: Operation,
    answer: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    async with open_ws(port_of(node), "OPS-1", version) as ws:
        result, request = await asyncio.gather(operation(node.operations, "OPS-1"), answer_one(ws, answer))
    assert request[2:] == [action, expected]
    assert result == answer


async def test_answer_that_breaks_the_schema_is_rejected(node: CsmNode) -> None:
    async with open_ws(port_of(node), "OPS-2", "ocpp1.6") as ws:
        with pytest.raises(CallRejected) as rejected:
            await asyncio.gather(
                node.operations.reset("OPS-2", hard=True), answer_one(ws, {"status": "Maybe"})
            )
    assert rejected.value.error.code == "PropertyConstraintViolation"


async def test_station_callerror_is_raised_with_its_code(node: CsmNode) -> None:
    async with open_ws(port_of(node), "OPS-3", "ocpp2.0.1") as ws:

        async def refuse() -> None:
            request = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(json.dumps([4, request[1], "NotSupported", "no", {}]))

        with pytest.raises(CallRejected) as rejected:
            await asyncio.gather(node.operations.unlock("OPS-3", 1), refuse())
    assert rejected.value.error.code == "NotSupported"


async def test_local_list_sends_a_past_expiry_in_utc_for_the_station_to_apply(node: CsmNode) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    async with open_ws(port_of(node), "OPS-4", "ocpp1.6") as ws:
        _, request = await asyncio.gather(
            node.operations.send_local_list("OPS-4", 1, [IdTokenRecord("OLD", AuthStatus.ACCEPTED, past)]),
            answer_one(ws, {"status": "Accepted"}),
        )
    assert request[3]["localAuthorizationList"][0]["idTagInfo"]["expiryDate"].endswith("Z")

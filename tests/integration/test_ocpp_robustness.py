"""Malformed frames, negotiation, Basic auth, pipelining and callbacks over a real loopback websocket."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from chargeflow.csm.ports import CsmRepository
from chargeflow.protocols.ocpp.connection import CallTimeout
from chargeflow.runtime.app import CsmNode
from tests.integration.conftest import port_of
from tests.integration.stations import basic_auth, open_ws

BOOT16 = {"chargePointVendor": "V", "chargePointModel": "M"}


async def exchange(ws: object, frame: str) -> list[object]:
    await ws.send(frame)  # type: ignore[attr-defined]
    answer: list[object] = json.loads(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[attr-defined]
    return answer


@pytest.mark.parametrize(
    ("version", "frame", "message_id", "code"),
    [
        ("ocpp1.6", "not json", "-1", "FormationViolation"),
        ("ocpp2.0.1", "not json", "-1", "FormatViolation"),
        ("ocpp1.6", '{"a": 1}', "-1", "FormationViolation"),
        ("ocpp1.6", '[2, "m1", "BootNotification"]', "m1", "FormationViolation"),
        ("ocpp1.6", '[7, "m2", "BootNotification", {}]', "m2", "ProtocolError"),
        ("ocpp2.0.1", '[7, "m2", "BootNotification", {}]', "m2", "MessageTypeNotSupported"),
        (
            "ocpp1.6",
            '[2, "m3", "BootNotification", {"chargePointVendor": "V"}]',
            "m3",
            "OccurenceConstraintViolation",
        ),
        (
            "ocpp2.0.1",
            '[2, "m3", "BootNotification", {"reason": "PowerUp"}]',
            "m3",
            "OccurrenceConstraintViolation",
        ),
        (
            "ocpp1.6",
            '[2, "m4", "StatusNotification", {"connectorId": "one", "errorCode": "NoError", '
            '"status": "Available"}]',
            "m4",
            "TypeConstraintViolation",
        ),
        (
            "ocpp1.6",
            '[2, "m5", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", '
            '"status": "Dancing"}]',
            "m5",
            "PropertyConstraintViolation",
        ),
        ("ocpp1.6", '[2, "m6", "Heartbeat", {"extra": 1}]', "m6", "FormationViolation"),
        ("ocpp1.6", '[2, "m7", "NoSuchAction", {}]', "m7", "NotImplemented"),
        ("ocpp1.6", '[2, "m9", "Reset", {"type": "Hard"}]', "m9", "NotSupported"),
        ("ocpp2.0.1", '[2, "m9", "SignCertificate", {"csr": "x"}]', "m9", "NotSupported"),
        (
            "ocpp1.6",
            '[2, "m8", "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, '
            '"timestamp": "yesterday"}]',
            "m8",
            "TypeConstraintViolation",
        ),
    ],
)
async def test_malformed_frames_get_callerror_and_connection_stays_up(
    node: CsmNode, version: str, frame: str, message_id: str, code: str
) -> None:
    async with open_ws(port_of(node), "BAD-1", version) as ws:
        answer = await exchange(ws, frame)
        assert answer[:3] == [4, message_id, code]
        heartbeat = await exchange(ws, '[2, "hb", "Heartbeat", {}]')
        assert heartbeat[:2] == [3, "hb"]


async def test_pipelined_calls_are_answered_in_order(node: CsmNode) -> None:
    async with open_ws(port_of(node), "PIPE-1", "ocpp1.6") as ws:
        for n in range(20):
            await ws.send(json.dumps([2, f"p{n}", "Heartbeat", {}]))
        answers = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(20)]
    assert [a[1] for a in answers] == [f"p{n}" for n in range(20)]
    assert all(a[0] == 3 for a in answers)


async def test_connection_offering_no_ocpp_version_is_refused(
    node: CsmNode, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://127.0.0.1:{port_of(node)}/NOPROTO", subprotocols=["mqtt"]):  # type: ignore[list-item]
            pass
    assert refused.value.response.status_code == 400
    assert "refused NOPROTO" in caplog.text


async def test_highest_common_version_is_chosen(node: CsmNode) -> None:
    async with connect(
        f"ws://127.0.0.1:{port_of(node)}/MULTI",
        subprotocols=["ocpp1.6", "ocpp2.0.1"],  # type: ignore[list-item]
    ) as ws:
        assert ws.subprotocol == "ocpp2.0.1"


async def test_basic_auth_checks_the_stored_password_hash(node: CsmNode, repository: CsmRepository) -> None:
    await node.service.register_station("SEC-1", "s3cret-password")
    stored = await repository.get_station("SEC-1")
    assert stored is not None
    assert stored.password_hash is not None
    assert "s3cret" not in stored.password_hash
    async with open_ws(port_of(node), "SEC-1", "ocpp1.6", password="s3cret-password") as ws:
        assert ws.subprotocol == "ocpp1.6"
    for headers in (basic_auth("SEC-1", "wrong"), None):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"ws://127.0.0.1:{port_of(node)}/SEC-1",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=headers,
            ):
                pass
        assert refused.value.response.status_code == 401


async def test_missing_answer_times_out_without_blocking_the_station(node: CsmNode) -> None:
    async with open_ws(port_of(node), "MUTE-1", "ocpp1.6") as ws:
        await exchange(ws, json.dumps([2, "b", "BootNotification", BOOT16]))
        pending = asyncio.create_task(node.operations.reset("MUTE-1", hard=False))
        sent = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert sent[0] == 2
        assert sent[2] == "Reset"
        # The station never answers, yet its own CALLs are still served.
        assert (await exchange(ws, '[2, "hb", "Heartbeat", {}]'))[:2] == [3, "hb"]
        with pytest.raises(CallTimeout):
            await pending


async def test_station_answer_resolves_the_pending_call(node: CsmNode) -> None:
    async with open_ws(port_of(node), "ECHO-1", "ocpp1.6") as ws:
        pending = asyncio.create_task(node.operations.reset("ECHO-1", hard=True))
        sent = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert sent[3] == {"type": "Hard"}
        await ws.send(json.dumps([3, sent[1], {"status": "Rejected"}]))
        assert await pending == {"status": "Rejected"}

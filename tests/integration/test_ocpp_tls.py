"""Security profiles 2 and 3 over real TLS on loopback: wss:// with the server's certificate, Basic auth
inside it (2), and client certificates naming the station (3)."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from chargeflow.clock import SystemClock
from chargeflow.csm.service import CsmConfig
from chargeflow.protocols.ocpp.server import OcppServerConfig, TlsSettings
from chargeflow.runtime.app import CsmNode, build_csm
from chargeflow.store.memory import MemoryRepository
from tests.certificates import Issued, TestCa
from tests.integration.stations import basic_auth

BOOT = [2, "b1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]


@asynccontextmanager
async def running(
    tls: TlsSettings, auto_register: bool, pins: dict[str, str] | None = None
) -> AsyncIterator[CsmNode]:
    node = build_csm(
        MemoryRepository(),
        SystemClock(),
        CsmConfig(auto_register=auto_register),
        OcppServerConfig(host="127.0.0.1", port=0, tls=tls, certificate_pins=pins or {}),
        operation_timeout_s=1.0,
    )
    task = asyncio.create_task(node.ocpp.serve())
    await asyncio.wait_for(node.ocpp.started.wait(), 5)
    try:
        yield node
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def client_context(ca: TestCa, client: Issued | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca.cert)
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    return context


async def boot(
    node: CsmNode, station: str, context: ssl.SSLContext, password: str | None = None
) -> list[object]:
    headers = basic_auth(station, password) if password is not None else None
    async with connect(
        f"wss://127.0.0.1:{node.ocpp.port}/{station}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=headers,
        ssl=context,
        open_timeout=5,
    ) as ws:
        await ws.send(json.dumps(BOOT))
        answer: list[object] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        return answer


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path, "site-ca")


async def test_profile_2_serves_wss_with_basic_auth_inside_tls(ca: TestCa) -> None:
    server = ca.issue("127.0.0.1", server=True)
    async with running(TlsSettings(server.cert, server.key), auto_register=False) as node:
        await node.service.register_station("TLS-1", "s3cret-passw0rd")
        answer = await boot(node, "TLS-1", client_context(ca), "s3cret-passw0rd")
        assert answer[0] == 3
        assert answer[2]["status"] == "Accepted"  # type: ignore[index]
        with pytest.raises(InvalidStatus) as refused:
            await boot(node, "TLS-1", client_context(ca), "wrong")
        assert refused.value.response.status_code == 401
        # A plain websocket to the TLS port does not get through.
        with pytest.raises((InvalidMessage, OSError)):
            async with connect(f"ws://127.0.0.1:{node.ocpp.port}/TLS-1", open_timeout=2):
                pass


async def test_profile_2_client_that_does_not_trust_the_server_fails_the_handshake(
    ca: TestCa, tmp_path: Path
) -> None:
    server = ca.issue("127.0.0.1", server=True)
    other = TestCa(tmp_path, "other-ca")
    async with running(TlsSettings(server.cert, server.key), auto_register=True) as node:
        with pytest.raises(ssl.SSLCertVerificationError):
            await boot(node, "TLS-2", client_context(other), "pw")


async def test_profile_3_admits_the_station_its_certificate_names_and_no_other(
    ca: TestCa, tmp_path: Path
) -> None:
    server = ca.issue("127.0.0.1", server=True)
    tls = TlsSettings(server.cert, server.key, client_ca_file=ca.cert)
    async with running(tls, auto_register=False) as node:
        await node.service.register_station("CERT-1", None)
        own = ca.issue("CERT-1")
        answer = await boot(node, "CERT-1", client_context(ca, own))
        assert answer[2]["status"] == "Accepted"  # type: ignore[index]

        # Another station's certificate, though signed by the right CA, does not open CERT-1.
        with pytest.raises(InvalidStatus) as wrong_name:
            await boot(node, "CERT-1", client_context(ca, ca.issue("CERT-2")))
        assert wrong_name.value.response.status_code == 401

        # A certificate naming an unknown station: refused without auto-registration.
        with pytest.raises(InvalidStatus) as unknown:
            await boot(node, "CERT-9", client_context(ca, ca.issue("CERT-9")))
        assert unknown.value.response.status_code == 401

        # A certificate from another CA, and no certificate at all, fail the TLS handshake.
        rogue = TestCa(tmp_path, "rogue-ca").issue("CERT-1")
        for context in (client_context(ca, rogue), client_context(ca)):
            with pytest.raises((ssl.SSLError, InvalidMessage, OSError)):
                await boot(node, "CERT-1", context)
        assert "CERT-1" not in node.ocpp.connections


async def test_profile_3_registers_a_certified_station_where_auto_registration_is_on(ca: TestCa) -> None:
    server = ca.issue("127.0.0.1", server=True)
    tls = TlsSettings(server.cert, server.key, client_ca_file=ca.cert)
    async with running(tls, auto_register=True) as node:
        answer = await boot(node, "CERT-NEW", client_context(ca, ca.issue("CERT-NEW")))
        assert answer[2]["status"] == "Accepted"  # type: ignore[index]
        station = await node.service.repository.get_station("CERT-NEW")
        assert station is not None
        assert station.password_hash is None


def fingerprint(issued: Issued) -> str:
    certificate = x509.load_pem_x509_certificate(issued.cert.read_bytes())
    return certificate.fingerprint(hashes.SHA256()).hex()


async def test_profile_3_with_a_pinned_certificate_admits_that_certificate_only(ca: TestCa) -> None:
    server = ca.issue("127.0.0.1", server=True)
    tls = TlsSettings(server.cert, server.key, client_ca_file=ca.cert)
    pinned = ca.issue("CERT-1")
    pin, pinned_context = fingerprint(pinned), client_context(ca, pinned)  # read before the files are reused
    # the same name, signed by the same CA: a certificate made elsewhere
    other_context = client_context(ca, ca.issue("CERT-1"))
    async with running(tls, auto_register=False, pins={"CERT-1": pin}) as node:
        await node.service.register_station("CERT-1", None)
        with pytest.raises(InvalidStatus) as refused:
            await boot(node, "CERT-1", other_context)
        assert refused.value.response.status_code == 401
        answer = await boot(node, "CERT-1", pinned_context)
        assert answer[2]["status"] == "Accepted"  # type: ignore[index]

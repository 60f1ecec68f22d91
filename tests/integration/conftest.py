from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path

import pytest

from chargeflow.clock import SystemClock
from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.service import CsmConfig
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.app import CsmNode, build_csm
from tests.databases import BACKENDS, open_repository


@pytest.fixture(params=BACKENDS)
async def repository(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CsmRepository]:
    async with open_repository(request.param, tmp_path) as repo:
        yield repo


@pytest.fixture
async def node(repository: CsmRepository) -> AsyncIterator[CsmNode]:
    """A CSM with its OCPP endpoint on a free loopback port."""
    built = build_csm(
        repository,
        SystemClock(),
        CsmConfig(auto_register=True),
        OcppServerConfig(host="127.0.0.1", port=0, call_timeout_s=1.0),
        operation_timeout_s=1.0,
    )
    task = asyncio.create_task(built.ocpp.serve())
    await asyncio.wait_for(built.ocpp.started.wait(), 5)
    yield built
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def port_of(node: CsmNode) -> int:
    assert node.ocpp.port is not None
    return node.ocpp.port

"""Issue 13, item 6 over HTTP: a body over the budget is refused (413) before it is read or parsed, before
authentication too, and a 422 never echoes a large body."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chargeflow.csm.ports import CsmRepository
from chargeflow.runtime.app import CsmNode
from chargeflow.web.api import create_api
from chargeflow.web.limits import HttpBudgets
from tests.databases import open_repository

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OVER = HttpBudgets().max_body_bytes + 1


@pytest.fixture
async def repository(tmp_path: Path) -> AsyncIterator[CsmRepository]:
    """One store is enough here (the conftest runs each test on every store): the store is not the point."""
    async with open_repository("memory", tmp_path) as repo:
        yield repo


@pytest.fixture
async def client(node: CsmNode) -> AsyncIterator[httpx.AsyncClient]:
    counter = itertools.count(100)
    app = create_api(node.service, node.operations, TOKEN, lambda: next(counter))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
        yield c


async def test_a_declared_body_over_the_budget_gets_413_before_authentication(
    client: httpx.AsyncClient,
) -> None:
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        for _ in range(OVER // 1024 + 1):
            sent.append(1024)
            yield b"x" * 1024

    answer = await client.post("/api/stations", content=body(), headers={"Content-Length": str(OVER + 1023)})
    assert answer.status_code == 413
    assert answer.headers["connection"] == "close"
    assert sum(sent) <= 64 * 1024  # hardly any of it was read


async def test_a_streamed_body_is_counted_and_refused_once_over_the_budget(client: httpx.AsyncClient) -> None:
    async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to go by
        for _ in range(OVER // 4096 + 2):
            yield b" " * 4096

    answer = await client.post("/api/stations", content=body(), headers=AUTH)
    assert answer.status_code == 413


async def test_a_body_within_the_budget_is_served_as_before(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/stations", json={"id": "LIM-1", "password": "a-long-password-123"}, headers=AUTH
    )
    assert created.status_code == 201
    assert (await client.post("/api/stations", content=b"x" * 1000)).status_code == 401


async def test_a_422_does_not_echo_a_large_body(client: httpx.AsyncClient) -> None:
    large = "[" + ",".join(['"' + "y" * 1000 + '"'] * 200) + "]"  # 200 kB, within the budget
    answer = await client.post(
        "/api/stations", content=large, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert answer.status_code == 422
    assert len(answer.content) < 1000
    assert "y" * 100 not in answer.text

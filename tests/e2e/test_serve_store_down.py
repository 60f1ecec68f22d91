"""``serve --site`` on PostgreSQL whose connection goes away: every station is at its safe limit within a
step, and back on the grant when the store returns. The shared PostgreSQL server stays up: serve reaches a
fresh database of its own through a TCP relay on a private port, and the test closes the relay (its
connections reset, new ones refused) and opens it again."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from chargeflow.bench.ocpp_load import serve_process
from chargeflow.sim.drawing import DrawingStation, Ev, connected
from tests.databases import POSTGRES_URL
from tests.e2e.test_serve_ems_process import SAFE_A, SITE, _safe


class Relay:
    """A TCP relay from a private loopback port to PostgreSQL, that can be cut and restored."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """PostgreSQL gone, as the CSM sees it: connections reset, new ones refused."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A database of the test's own on the shared server, dropped afterwards; its name."""
    name = f"t_{secrets.token_hex(6)}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as c:
            await c.execute(text(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        await admin.dispose()
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    try:
        yield name
    finally:
        async with admin.connect() as c:
            await c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        await admin.dispose()


def _granted(stations: list[DrawingStation]) -> bool:
    """The grant is in force: a station holds a TxProfile for its session beyond its safe share (EDF gives
    most of the yard to one); not merely the 32 A of a station that has no profile yet."""
    return any(
        s.state.allowed_a() > SAFE_A + 2
        and any(p.purpose == "TxProfile" and p.transaction == s.state.transaction for p in s.state.profiles)
        for s in stations
    )


async def _until(
    predicate: Callable[[], bool], timeout_s: float, report: Callable[[], Awaitable[None]]
) -> float:
    """Wait, with the EVs drawing and reporting every half second, until ``predicate``; how long it took."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout_s, "timed out"
        with contextlib.suppress(Exception):  # while the store is down the CSM may answer with an error
            await asyncio.wait_for(report(), 2.0)
        await asyncio.sleep(0.5)
    return time.monotonic() - start


async def test_a_store_that_goes_away_brings_the_safe_limit_within_a_step_and_back(tmp_path: Path) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(SITE)
    ev = Ev(max_a=32.0)
    upstream = POSTGRES_URL.rsplit("@", 1)[1].split("/", 1)[0]
    host, port = upstream.rsplit(":", 1)
    relay = Relay(host, int(port))
    await relay.open()
    async with fresh_database() as name:
        db = POSTGRES_URL.replace(upstream, f"127.0.0.1:{relay.port}").rsplit("/", 1)[0] + f"/{name}"
        async with (
            serve_process(
                db, "store-token-0123456789abcdef", "--site", str(site_file), "--step", "2"
            ) as server,
            contextlib.AsyncExitStack() as stack,
        ):
            stations: list[DrawingStation] = [
                await stack.enter_async_context(connected(server.ocpp_port, sid, "1.6"))
                for sid in ("e1", "e2")
            ]

            async def report() -> None:
                await asyncio.gather(*(s.report(ev, 0.5) for s in stations), return_exceptions=True)

            for i, s in enumerate(stations):
                await s.start_session(f"t{i}")
            await _until(lambda: _granted(stations), 20, report)
            await relay.cut()
            took = await _until(lambda: _safe(stations), 10, report)
            assert took < 4.5  # a step of 2 s, the OCPP round trips, the test's own polling
            await relay.open()
            await _until(lambda: _granted(stations), 15, report)
        await server.process.wait()

"""The OCPP-J client side of a simulated station: one websocket, the ``ocpp`` library's charge point on it.

Tasks belong to one TaskGroup in the client's runner task: the receive loop and the follow-ups of answered
calls (what an answer promises runs only after the answer has gone out, because the library handles a CALL
inside its receive loop: a handler that called the CSM itself would wait for an answer nobody reads).
Every call has a timeout; ``close`` ends the connection and waits, bounded, for the tasks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ocpp.v16
import ocpp.v201
from ocpp.exceptions import OCPPError, UnknownCallErrorCodeError, ValidationError
from ocpp.routing import create_route_map
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

log = logging.getLogger(__name__)

FollowUp = Callable[[], Awaitable[None]]


class StationError(RuntimeError):
    """The CSM answered a station's call with an error, or not at all, or the station is offline."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    call_s: float = 10.0
    open_s: float = 10.0
    close_s: float = 5.0


def basic_auth(station_id: str, password: str) -> dict[str, str]:
    """Security profile 1: HTTP Basic with the station id as the user."""
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class OcppClient:
    def __init__(
        self,
        station_id: str,
        subprotocol: str,
        url: str,
        password: str | None,
        timeouts: Timeouts,
        message_ids: Iterator[int],
    ) -> None:
        self.station_id = station_id
        self.subprotocol = subprotocol
        self.url = url
        self.password = password
        self.timeouts = timeouts
        self._message_ids = message_ids
        self._ws: ClientConnection | None = None
        self._cp: Any = None
        self._runner: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        self._follow_ups: list[FollowUp] = []

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._runner is not None and not self._runner.done()

    async def open(self, handlers: object) -> None:
        """Connect and serve the CSM's calls with ``handlers`` (an object with ``@on`` methods)."""
        headers = basic_auth(self.station_id, self.password) if self.password is not None else None
        self._ws = await connect(
            self.url,
            subprotocols=[Subprotocol(self.subprotocol)],
            additional_headers=headers,
            open_timeout=self.timeouts.open_s,
            close_timeout=self.timeouts.close_s,
        )
        library = ocpp.v16.ChargePoint if self.subprotocol == "ocpp1.6" else ocpp.v201.ChargePoint
        self._cp = library(self.station_id, self._ws, response_timeout=self.timeouts.call_s)
        self._cp.route_map = create_route_map(handlers)
        # Message ids from a counter rather than uuid4, so that runs can be compared.
        self._cp._unique_id_generator = lambda: f"{self.station_id}-{next(self._message_ids)}"
        started = asyncio.Event()
        self._runner = asyncio.create_task(self._run(started), name=f"station-{self.station_id}")
        await asyncio.wait_for(started.wait(), self.timeouts.open_s)

    async def _run(self, started: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            started.set()
            await self._receive()
        self._group = None

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                await self._cp.route_message(raw)
                for follow_up in self._follow_ups:
                    self._spawn(follow_up)
                self._follow_ups.clear()
        except ConnectionClosed:
            pass

    def _spawn(self, follow_up: FollowUp) -> None:
        async def guarded() -> None:
            try:
                await follow_up()
            except (StationError, TimeoutError, ConnectionClosed) as exc:
                log.warning("%s: follow-up failed: %s", self.station_id, exc)

        assert self._group is not None
        self._group.create_task(guarded())

    def after_answer(self, follow_up: FollowUp) -> None:
        """Run ``follow_up`` once the answer to the CALL being handled has been sent."""
        self._follow_ups.append(follow_up)

    async def wait_disconnected(self) -> None:
        """Return once the connection has ended (the CSM closed it, or ``close``)."""
        if self._runner is not None:
            await asyncio.wait([self._runner])

    async def close(self) -> None:
        """Close the websocket; follow-ups still waiting for an answer get the close timeout, then end."""
        if self._ws is not None:
            await self._ws.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            done, _ = await asyncio.wait([runner], timeout=self.timeouts.close_s)
            if not done:
                log.warning("%s: tasks did not end in time; cancelled", self.station_id)
                runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        self._ws = None
        self._cp = None

    async def call(self, payload: Any) -> Any:
        """One CALL to the CSM; a CALLERROR or no answer in time raises ``StationError``."""
        if self._cp is None:
            raise StationError(f"{self.station_id} is not connected")
        action = type(payload).__name__
        try:
            # The library's own timeout covers the answer; ours the wait for the previous call too.
            async with asyncio.timeout(2 * self.timeouts.call_s):
                return await self._cp.call(payload, suppress=False)
        except TimeoutError:
            raise StationError(f"{self.station_id}: no answer to {action} in time") from None
        except ConnectionClosed as exc:
            raise StationError(f"{self.station_id}: connection closed") from exc
        except (OCPPError, ValidationError, UnknownCallErrorCodeError) as exc:
            raise StationError(f"{self.station_id}: {action} refused: {exc}") from exc

"""A site of simulated stations on one shared clock: connect them all, step them all.

The owner (a demo, a test, a scenario) moves the shared ``ManualClock`` and calls ``step``: every station
lets its EV draw for the step under the limit in force at the step's start, then the stations that run a
transaction send their meter values and every station heartbeats when due, all at once over their own
sockets. A step is
bounded in time; a week of a site is a bounded loop of steps (``run``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from websockets.exceptions import InvalidHandshake

from chargeflow.clock import Clock, ManualClock
from chargeflow.sim.ocpp_client import StationError
from chargeflow.sim.profiles import Version
from chargeflow.sim.stations import SimulatedStation, StationOptions
from chargeflow.site.model import ChargingPoint

log = logging.getLogger(__name__)


def mixed_versions(count: int) -> list[str]:
    """A mix of protocol generations: every other station speaks 2.0.1, the rest 1.6."""
    return [Version.V16 if n % 2 == 0 else Version.V201 for n in range(count)]


@dataclass(frozen=True, slots=True)
class StepReport:
    at: datetime
    power_w: float
    grid_currents_a: tuple[float, float, float]  # the stations' draw per grid phase
    charging: int  # stations whose EV draws
    offline: int  # stations without a connection to the CSM after the step


class SiteRunner:
    """N simulated stations against a CSM at ``base_url`` (``ws://HOST:PORT``), on one clock."""

    def __init__(
        self,
        base_url: str,
        points: Sequence[ChargingPoint],
        versions: Sequence[str],
        clock: Clock,
        password_of: Callable[[str], str | None] = lambda _: None,
        options: StationOptions | None = None,
        step_timeout_s: float = 30.0,
    ) -> None:
        if len(points) != len(versions):
            raise ValueError("one OCPP version per charging point")
        self.clock = clock
        self.step_timeout_s = step_timeout_s
        self.stations = [
            SimulatedStation(
                point, version, f"{base_url.rstrip('/')}/{point.id}", clock, password_of(point.id), options
            )
            for point, version in zip(points, versions, strict=True)
        ]
        self.by_id = {s.id: s for s in self.stations}

    async def __aenter__(self) -> SiteRunner:
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def connect(self) -> None:
        async with asyncio.timeout(self.step_timeout_s), asyncio.TaskGroup() as group:
            for station in self.stations:
                group.create_task(station.connect())

    async def close(self) -> None:
        async with asyncio.TaskGroup() as group:
            for station in self.stations:
                group.create_task(station.close())

    async def step(self, now: datetime, step_s: float, temperature_c: float = 20.0) -> StepReport:
        """The step that starts at ``now``: every EV draws for ``step_s`` under the limit in force at
        ``now``, then the stations report over their sockets at the shared clock's time (``run`` has
        moved it to the end of the step)."""
        draws = [station.advance(now, step_s, temperature_c) for station in self.stations]
        async with asyncio.timeout(self.step_timeout_s), asyncio.TaskGroup() as group:
            for station in self.stations:
                group.create_task(self._report(station, self.clock.now()))
        currents = [0.0, 0.0, 0.0]
        for station in self.stations:
            for phase, current in enumerate(station.grid_currents_a()):
                currents[phase] += current
        return StepReport(
            at=now,
            power_w=sum(d.power_w for d in draws),
            grid_currents_a=(currents[0], currents[1], currents[2]),
            charging=sum(1 for d in draws if d.current_a > 0),
            offline=sum(1 for s in self.stations if not s.connected),
        )

    @staticmethod
    async def _report(station: SimulatedStation, now: datetime) -> None:
        """Meter values and heartbeat; a station that lost its CSM tries to reconnect first, and one that
        cannot report this step is left offline until the next (the EV's physics go on)."""
        try:
            if not station.connected:
                await station.reconnect()
            if station.transaction is not None:
                await station.send_meter_values()
            await station.heartbeat_if_due(now)
        except (OSError, TimeoutError, InvalidHandshake, StationError) as exc:
            log.warning("%s: offline this step: %s", station.id, exc)

    async def run(
        self,
        clock: ManualClock,
        duration: timedelta,
        step: timedelta,
        before_step: Callable[[datetime], object] | None = None,
        temperature_c: float = 20.0,
    ) -> list[StepReport]:
        """Step the site for ``duration`` of simulated time from the clock's present time.

        Each step: ``before_step(now)`` at its start (plug EVs in or out, change limits; an awaitable it
        returns is awaited), the clock moves to its end, then ``step(now, …)``.
        """
        reports = []
        for _ in range(int(duration / step)):
            now = clock.now()
            if before_step is not None:
                pending = before_step(now)
                if asyncio.iscoroutine(pending):
                    await pending
            clock.advance(step)
            reports.append(await self.step(now, step.total_seconds(), temperature_c))
        return reports

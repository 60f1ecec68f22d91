"""A step that fails (the store is down) puts every station the smart charging last knew of at its safe
limit within that step, and the next step that runs brings the grant back; each change is an event."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.smart_charging import TX_DEFAULT, TX_PROFILE, SmartCharging, SmartChargingConfig
from chargeflow.ems.service import EmsConfig, EmsService
from chargeflow.exchange import InMemoryExchange
from chargeflow.protocols.ocpp.control import OcppStationControl
from chargeflow.protocols.ocpp.operations import StationOperations
from chargeflow.runtime.control import SiteControl
from chargeflow.runtime.site import SiteLoop
from chargeflow.store.memory import MemoryRepository
from chargeflow.web.live import FlowHistory
from tests.unit.test_control_services import SITE, FakeControl, FakeMeter, Rig


class FlakyRepository:
    """A repository whose calls raise while ``down``, as a PostgreSQL server that went away."""

    def __init__(self, inner: MemoryRepository) -> None:
        self._inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise ConnectionRefusedError("the store is down")
            return await attr(*args, **kwargs)

        return call


class LoopRig(Rig):
    def __init__(self, control: FakeControl | None = None) -> None:
        super().__init__()
        self.flaky = FlakyRepository(self.repo)
        repository = cast(CsmRepository, self.flaky)
        bus = InMemoryExchange()
        self.control = control or FakeControl()
        config = SmartChargingConfig(step_s=10, safe_current_a=6.0, margin_pct=0.0)
        self.csm = SmartCharging(SITE, repository, bus, self.control, self.clock, config, self.meter)
        self.ems = EmsService(SITE, self.meter, bus, self.clock, EmsConfig(step_s=10, margin_pct=0.0))
        site = SiteControl(cast(Any, None), self.csm, self.ems, repository)  # no OCPP node: FakeControl
        self.loop = SiteLoop(site, FakeMeter(self.clock), self.clock, FlowHistory(), step_s=10)

    async def loop_step(self) -> dict[str, float]:
        """One step of the site's loop; the TxProfile limit each station holds after it."""
        await self.loop.step()
        self.clock.advance(timedelta(seconds=10))
        held: dict[str, float] = {}
        for station, _, current, purpose in self.control.sent:
            if purpose == TX_PROFILE:
                held[station] = current
        return held


async def test_a_store_that_fails_brings_the_safe_limit_in_the_step_and_its_return_the_grant() -> None:
    rig = LoopRig()
    await rig.start("cp1")
    await rig.start("cp2")
    granted = await rig.loop_step()
    assert min(granted["cp1"], granted["cp2"]) > 6.0
    rig.flaky.down = True
    held = await rig.loop_step()
    assert held == {"cp1": 6.0, "cp2": 6.0}
    step = rig.csm.last
    assert step is not None
    assert step.fallback == "fallback_store_unavailable"
    assert {lim.reason for lim in step.limits} == {"fallback_store_unavailable"}
    assert rig.loop.failures == 1
    assert rig.csm.events[-1].endswith("all stations to their safe limit: fallback_store_unavailable")
    sent = len(rig.control.sent)
    await rig.loop_step()  # still down: nothing new to send, no new event
    assert len(rig.control.sent) == sent
    assert len(rig.csm.events) == 1
    rig.flaky.down = False
    assert await rig.loop_step() == granted
    step = rig.csm.last
    assert step is not None
    assert step.fallback is None
    assert rig.csm.events[-1].endswith("the grant is back in force (fallback_store_unavailable ended)")


async def test_a_store_down_from_the_first_step_leaves_the_stations_at_their_safe_defaults() -> None:
    rig = LoopRig()
    await rig.start("cp1")
    rig.flaky.down = True
    assert await rig.loop_step() == {}  # no session known: the stations hold their safe TxDefault
    step = rig.csm.last
    assert step is not None
    assert (step.fallback, step.limits) == ("fallback_store_unavailable", ())
    assert ("cp1", 0, 6.0, TX_DEFAULT) in rig.control.sent
    rig.flaky.down = False
    assert (await rig.loop_step())["cp1"] > 6.0


class BrokenStation(FakeControl):
    """cp1's station answers nonsense to every limit while ``broken``."""

    broken = False

    async def set_limit(
        self,
        station_id: str,
        evse_id: int,
        current_a: float,
        purpose: str,
        transaction_id: str | None = None,
        power_w: float | None = None,
        stack_level: int = 0,
        valid_to: datetime | None = None,
    ) -> bool:
        if station_id == "cp1" and self.broken:
            raise RuntimeError("nonsense")
        return await super().set_limit(station_id, evse_id, current_a, purpose, transaction_id, power_w)


async def test_one_station_that_fails_does_not_keep_the_others_from_their_safe_limit() -> None:
    broken = BrokenStation()
    rig = LoopRig(broken)
    await rig.start("cp1")
    await rig.start("cp2")
    assert min((await rig.loop_step()).values()) > 6.0
    broken.broken = True
    rig.flaky.down = True
    held = await rig.loop_step()
    assert held["cp2"] == 6.0
    step = rig.csm.last
    assert step is not None
    assert [(lim.station_id, lim.accepted) for lim in step.limits] == [("cp1", False), ("cp2", True)]


class Operations:
    """What ``OcppStationControl`` uses of the OCPP server: a station that accepts every profile."""

    async def set_charging_limit(
        self, station_id: str, evse_id: int, limit: float, unit: str, purpose: str, **_: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"chargingProfilePurpose": purpose, "limit": limit}, {"status": "Accepted"}


async def test_a_profile_the_store_cannot_record_still_counts_as_accepted() -> None:
    async def record(station_id: str, evse_id: int, profile: dict[str, Any], status: str) -> None:
        raise ConnectionRefusedError("the store is down")

    control = OcppStationControl(cast(StationOperations, Operations()), record)
    assert await control.set_limit("cp1", 1, 6.0, TX_PROFILE, "7")

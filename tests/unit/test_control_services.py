"""The EMS and the CSM's smart charging as running actors, with a fake for every port."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from chargeflow.clock import ManualClock
from chargeflow.csm import transactions
from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import ChargingNeeds, MeterSample, StartRequest
from chargeflow.csm.smart_charging import (
    TX_DEFAULT,
    TX_PROFILE,
    ObservedRepository,
    SmartCharging,
    SmartChargingConfig,
)
from chargeflow.ems.service import EmsConfig, EmsService
from chargeflow.exchange import DemandPoint, InMemoryExchange, PowerDemand, Validity
from chargeflow.site.circuit_loads import CircuitReading
from chargeflow.site.measurement import BuildingPower, EssState, SiteMeasurement
from chargeflow.site.model import ChargingPoint, Circuit, Ess, GridConnection, Site
from chargeflow.store.memory import MemoryRepository

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
SITE = Site(
    id="s",
    grid=GridConnection(40_000, 20_000),
    circuits=(Circuit("main", None, (80.0, 80.0, 80.0)),),
    charging_points=(ChargingPoint("cp1", "main", 3, 1, 32.0), ChargingPoint("cp2", "main", 3, 2, 32.0)),
    building_circuit="main",
    ess=Ess("main", 50_000, 5_000, 10_000, 10_000),
)


@dataclass
class FakeMeter:
    clock: ManualClock
    consumption_w: float = 10_000.0
    stale_by: timedelta = timedelta(0)
    circuits: tuple[CircuitReading, ...] = ()

    async def read(self) -> SiteMeasurement:
        return SiteMeasurement(
            self.clock.now() - self.stale_by,
            BuildingPower(self.consumption_w),
            EssState(30_000),
            circuits=self.circuits,
        )


@dataclass
class FakeControl:
    connected: set[str] = field(default_factory=lambda: {"cp1", "cp2"})
    refuse_tx_profiles: set[str] = field(default_factory=set)
    refuse_all: set[str] = field(default_factory=set)  # stations that refuse every profile
    sent: list[tuple[str, int, float, str]] = field(default_factory=list)
    #: each limit's stack level and validity, in the order sent
    terms: list[tuple[int, datetime | None]] = field(default_factory=list)

    def is_connected(self, station_id: str) -> bool:
        return station_id in self.connected

    def connected_stations(self) -> set[str]:
        return set(self.connected)

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
        self.sent.append((station_id, evse_id, current_a, purpose))
        self.terms.append((stack_level, valid_to))
        if station_id in self.refuse_all:
            return False
        return not (purpose == TX_PROFILE and station_id in self.refuse_tx_profiles)


@dataclass
class FakeEss:
    setpoints: list[float] = field(default_factory=list)

    async def set_discharge(self, discharge_w: float) -> None:
        self.setpoints.append(discharge_w)


class Rig:
    def __init__(self, site: Site = SITE) -> None:
        self.clock = ManualClock(T0)
        self.bus = InMemoryExchange()
        self.meter = FakeMeter(self.clock)
        self.control = FakeControl()
        self.ess = FakeEss()
        self.repo = MemoryRepository()
        config = SmartChargingConfig(step_s=10, safe_current_a=6.0, margin_pct=0.0, overdraw_grace_s=20)
        self.csm = SmartCharging(site, self.repo, self.bus, self.control, self.clock, config, self.meter)
        self.observed = ObservedRepository(self.repo, self.csm.live.observe)
        self.ems = EmsService(
            site, self.meter, self.bus, self.clock, EmsConfig(step_s=10, margin_pct=0.0), self.ess
        )

    async def start(self, station: str) -> int:
        start = StartRequest(station, 1, "tag", 1000, self.clock.now())
        outcome = await self.repo.start_transaction(start, transactions.from_start(start))
        return outcome.transaction.id

    async def draw(self, station: str, amps: float) -> None:
        samples = [MeterSample(self.clock.now(), str(amps), "Current.Import", f"L{p}") for p in (1, 2, 3)]
        await self.observed.add_meter_values(station, 1, None, samples)

    async def bus_demand_at(self, clock: ManualClock) -> PowerDemand:
        """The CSM's present demand, stamped by another clock."""
        now = clock.now()
        table = await self.csm.publish_demand()
        return PowerDemand(
            "s",
            Validity(now, now + timedelta(seconds=30)),
            (DemandPoint(now, table.needed_w, table.wished_w),),
        )

    async def step(self) -> dict[str, float]:
        """One control step in one process: CSM demand → EMS grant → CSM split and apply."""
        await self.csm.publish_demand()
        await self.ems.step()
        result = await self.csm.apply()
        self.clock.advance(timedelta(seconds=10))
        return {lim.station_id: lim.current_a for lim in result.limits}


async def test_grant_is_split_and_only_changes_are_sent() -> None:
    rig = Rig()
    await rig.start("cp1")
    await rig.start("cp2")
    limits = await rig.step()
    # 40 kW − 10 kW building = 30 kW for two 3-phase EVs: 21.7 A each (equal shares under EDF's ties).
    assert sum(a * 690 for a in limits.values()) <= 30_000
    assert set(limits) == {"cp1", "cp2"}
    tx_sent = [s for s in rig.control.sent if s[3] == TX_PROFILE]
    assert len(tx_sent) == 2
    await rig.step()  # nothing changed: nothing is sent again
    assert len([s for s in rig.control.sent if s[3] == TX_PROFILE]) == 2


async def test_every_connected_station_gets_a_safe_tx_default() -> None:
    rig = Rig()
    await rig.step()
    assert ("cp1", 0, 6.0, TX_DEFAULT) in rig.control.sent
    assert ("cp2", 0, 6.0, TX_DEFAULT) in rig.control.sent


async def test_a_step_change_of_building_load_moves_the_limits_in_the_same_step() -> None:
    rig = Rig()
    await rig.start("cp1")
    before = await rig.step()
    rig.meter.consumption_w = 30_000.0  # 10 kW left at the grid connection
    after = await rig.step()
    assert after["cp1"] * 690 <= 10_000 + 1e-6
    assert after["cp1"] < before["cp1"]


async def test_silent_ems_or_stale_meter_means_the_safe_limit() -> None:
    rig = Rig()
    await rig.start("cp1")
    assert (await rig.step())["cp1"] > 6.0
    # The EMS stops (no new grant); after the last grant's validity window the safe limit applies.
    for _ in range(3):
        await rig.csm.step()
        rig.clock.advance(timedelta(seconds=10))
    step = await rig.csm.step()
    assert step.fallback == "fallback_no_valid_grant"
    assert [lim.current_a for lim in step.limits] == [6.0]
    rig.meter.stale_by = timedelta(minutes=5)
    decision = await rig.ems.step()
    assert not decision.published
    assert decision.reason == "measurements_stale"


async def test_a_grant_from_a_clock_far_ahead_is_ignored() -> None:
    rig = Rig()
    ahead = ManualClock(T0 + timedelta(minutes=10))  # the EMS's clock runs ten minutes ahead of the CSM's
    rig.ems = EmsService(SITE, FakeMeter(ahead), rig.bus, ahead, EmsConfig(step_s=10, margin_pct=0.0))
    await rig.start("cp1")
    await rig.csm.publish_demand()
    await rig.ems.step()  # the CSM's demand is outside the window by the EMS's clock: no grant
    assert rig.bus.latest_grant("s") is None
    rig.ems = EmsService(SITE, FakeMeter(ahead), rig.bus, ahead, EmsConfig(step_s=10, validity_steps=30))
    rig.csm.set_preferences(1, Preferences(0, 10_000, T0 + timedelta(hours=1)))
    await rig.bus.publish_demand(await rig.bus_demand_at(ahead))
    await rig.ems.step()
    step = await rig.csm.apply()  # the grant starts ten minutes in the CSM's future: not in force yet
    assert step.fallback == "fallback_no_valid_grant"


async def test_station_without_tx_profiles_gets_the_limit_as_its_default() -> None:
    rig = Rig()
    rig.control.refuse_tx_profiles.add("cp1")
    await rig.start("cp1")
    await rig.step()
    purposes = [s[3] for s in rig.control.sent if s[0] == "cp1" and s[1] == 1]
    assert purposes == [TX_PROFILE, TX_DEFAULT]


async def test_a_station_that_refuses_every_profile_is_a_warning_once_until_it_accepts_again() -> None:
    rig = Rig()
    rig.control.refuse_all.add("cp1")
    await rig.start("cp1")
    for _ in range(3):  # every step retries the limit, and between steps its safe default
        await rig.step()
        await rig.csm.send_safe_defaults()
        assert rig.csm.last is not None
        assert rig.csm.last.refusing == ("cp1",)
    assert len([s for s in rig.control.sent if s[0] == "cp1"]) >= 6  # retried, each answered no
    warnings = [e for e in rig.csm.events if "cp1 refuses every charging limit" in e]
    assert len(warnings) == 1
    assert warnings[0].startswith(T0.isoformat())
    assert "cp2" not in " ".join(rig.csm.events)
    rig.control.refuse_all.clear()
    rig.meter.consumption_w = 20_000.0  # a new limit to send
    await rig.step()
    assert rig.csm.last is not None
    assert rig.csm.last.refusing == ()
    assert sum("cp1 accepts its charging limit again" in e for e in rig.csm.events) == 1


GARAGE = Site(
    id="s",
    grid=GridConnection(40_000, 20_000),
    circuits=(Circuit("main", None, (80.0, 80.0, 80.0)), Circuit("garage", "main", (32.0, 32.0, 32.0))),
    charging_points=(ChargingPoint("cp1", "garage", 3, 1, 16.0), ChargingPoint("cp2", "garage", 3, 1, 16.0)),
    building_circuit="main",
    ess=Ess("main", 50_000, 5_000, 10_000, 10_000),
)


async def test_a_circuit_meter_lowers_its_stations_and_a_silent_one_keeps_its_last_load() -> None:
    rig = Rig(GARAGE)
    rig.meter.consumption_w = 5_000.0
    await rig.start("cp1")
    await rig.start("cp2")
    assert await rig.step() == {"cp1": 16.0, "cp2": 16.0}  # no circuit meter: 2 × 16 A within 32 A
    # the garage reads its heat pump (13.8 kW, 20 A a phase) and the EVs' 2 × 16 A (22.08 kW)
    for cp in ("cp1", "cp2"):
        await rig.draw(cp, 16.0)
    rig.meter.circuits = (CircuitReading("garage", 13_800 + 22_080),)
    limits = await rig.step()
    assert sum(limits.values()) <= 32.0 - 20.0
    assert rig.csm.last is not None
    assert {lim.reason for lim in rig.csm.last.limits} <= {
        "fuse:garage:L1",
        "fuse:garage:L2",
        "fuse:garage:L3",
    }
    # the meter falls silent: 32 A less the two 6 A safe limits is 20 A, and so is the last load
    rig.meter.circuits = (CircuitReading("garage", None),)
    for _ in range(2):
        for cp, amps in limits.items():  # the EVs follow their limits
            await rig.draw(cp, amps)
        limits = await rig.step()
        assert sum(limits.values()) <= 12.0
    assert sum("circuit garage: its meter cannot be used" in e for e in rig.csm.events) == 1
    rig.meter.circuits = (CircuitReading("garage", 12 * 690),)  # back, the heat pump off: cp1 alone
    assert await rig.step() == {"cp1": 16.0, "cp2": 16.0}
    assert sum("circuit garage: its meter is read again" in e for e in rig.csm.events) == 1


async def test_an_ev_that_overdraws_is_suspended_after_the_grace_period() -> None:
    rig = Rig()
    rig.meter.consumption_w = 30_000.0  # 10 kW: 14.4 A for the one EV
    await rig.start("cp1")
    limit = (await rig.step())["cp1"]
    for _ in range(3):
        await rig.draw("cp1", limit + 5.0)
        limits = await rig.step()
    assert limits["cp1"] == 0.0
    assert rig.csm.events
    assert "suspended cp1" in rig.csm.events[0]


async def test_preferences_come_from_the_driver_then_the_ev_then_the_default() -> None:
    rig = Rig()
    tx_id = await rig.start("cp1")
    tx = await rig.repo.get_transaction(tx_id)
    assert tx is not None
    default = rig.csm.preferences_of(tx)
    assert (default.needed_wh, default.departure) == (0, T0 + timedelta(hours=8))
    await rig.repo.set_charging_needs(ChargingNeeds("cp1", 1, T0 + timedelta(hours=2), 12_000))
    tx = await rig.repo.get_transaction(tx_id)
    assert tx is not None
    assert rig.csm.preferences_of(tx).needed_wh == 12_000
    rig.csm.set_preferences(tx_id, Preferences(5_000, 9_000, T0 + timedelta(hours=1)))
    assert rig.csm.preferences_of(tx).wished_wh == 9_000


async def test_ems_sets_the_ess_to_cover_needs_beyond_the_grid() -> None:
    rig = Rig()
    rig.meter.consumption_w = 25_000.0  # 15 kW left at the grid
    tx_id = await rig.start("cp1")
    # 10 kWh in 25 min: 24.8 min at 22 kW after this step give 9.1 kWh, so full power is needed now.
    rig.csm.set_preferences(tx_id, Preferences(10_000, 10_000, T0 + timedelta(minutes=25)))
    limits = await rig.step()
    assert rig.ess.setpoints[-1] == pytest.approx(22_080 - 15_000)  # discharging what the grid lacks
    assert limits["cp1"] == 32.0
    assert rig.ems.last is not None
    assert rig.ems.last.reason == "ess_covers_needs"


@pytest.mark.parametrize("amps", [0.0, 16.0])
async def test_the_live_view_reads_phases_from_meter_values(amps: float) -> None:
    rig = Rig()
    await rig.observed.add_meter_values(
        "cp1",
        1,
        None,
        [
            MeterSample(T0, str(amps), "Current.Import", "L1"),
            MeterSample(T0, "7.5", "Power.Active.Import", unit="kW"),
        ],
    )
    live = rig.csm.live.get("cp1", 1)
    assert live.drawn_a == amps
    assert live.phases_used == (1 if amps else None)
    assert live.power_w == 7_500.0


async def test_apply_on_its_own_takes_the_demand_of_the_moment() -> None:
    rig = Rig()
    await rig.start("cp1")
    await rig.csm.publish_demand()
    await rig.ems.step()  # a grant is in force
    await rig.csm.apply()
    step = await rig.csm.apply()  # no publish_demand in between: the sessions must still be there
    assert [lim.station_id for lim in step.limits] == ["cp1"]
    assert step.fallback is None

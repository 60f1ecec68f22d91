"""The simulated site's meter and battery, as the EMS sees them through its ports."""

from datetime import UTC, datetime, timedelta

import pytest

from chargeflow.clock import ManualClock
from chargeflow.sim.data import Profile
from chargeflow.sim.meter import SimulatedSite
from chargeflow.site.model import Circuit, Ess, GridConnection, Pv, Site

SITE = Site(
    id="m",
    grid=GridConnection(50_000, 20_000),
    circuits=(Circuit("main", None, (100.0, 100.0, 100.0)),),
    building_circuit="main",
    building_peak_w=20_000,
    pv=(Pv("roof", "main", 10_000),),
    ess=Ess("main", 10_000, 2_000, 5_000, 5_000),
)
FLAT = Profile((1.0,), 3600)


def make(clock: ManualClock, ev_w: float = 3_000.0, delay: int = 1) -> SimulatedSite:
    return SimulatedSite(
        SITE, clock, FLAT, FLAT, lambda: ev_w, noise_pct=0.0, delay_steps=delay, ess_initial_soc=0.5
    )


async def test_the_meter_reports_a_step_late() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    site = make(clock)
    first = await site.read()
    clock.advance(timedelta(seconds=60))
    site.extra_load_w = 7_000
    site.advance(60)
    late = await site.read()
    assert late.at == first.at  # still the reading from one step before
    assert late.building.consumption_w == 20_000
    clock.advance(timedelta(seconds=60))
    site.advance(60)
    assert (await site.read()).building.consumption_w == 27_000


async def test_the_battery_follows_its_setpoint_within_power_and_energy() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    site = make(clock, delay=0)
    await site.set_discharge(20_000)  # more than its 5 kW inverter, and more than it holds above E_min
    truth = site.advance(3600)
    assert truth.ess_w == 3_000  # 5 kWh stored, 2 kWh minimum: 3 kWh in the hour
    assert site.stored_wh == 2_000
    truth = site.advance(3600)
    assert truth.ess_w == 0  # at E_min: nothing more
    await site.set_discharge(-20_000)
    truth = site.advance(3600)
    assert truth.ess_w == -5_000
    assert truth.grid_w == pytest.approx(20_000 - 10_000 + 3_000 + 5_000)

"""The non-EV load per fuse constraint with circuit meters (``site.circuit_loads``), worked out by hand.

The site: main (63 A) with the building on it, and garage (32 A) below it with two three-phase stations,
cp1 and cp2, at 230 V: 690 W is 1 A on each of three phases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargeflow.csm.demand import DemandTable, EvSession, Preferences, demand_table
from chargeflow.csm.split import Strategy, split
from chargeflow.site.circuit_loads import CircuitReading, EvDraw, measured_loads_a, other_loads_a
from chargeflow.site.model import ChargingPoint, Circuit, GridConnection, Site
from chargeflow.site.tree import building_loads_a, check_site

SITE = Site(
    id="s",
    grid=GridConnection(60_000, 20_000),
    circuits=(Circuit("main", None, (63.0, 63.0, 63.0)), Circuit("garage", "main", (32.0, 32.0, 32.0))),
    charging_points=(ChargingPoint("cp1", "garage", 3, 1, 16.0), ChargingPoint("cp2", "garage", 3, 1, 16.0)),
    building_circuit="main",
    voltage_v=230.0,
)
TREE = check_site(SITE)
CP1 = SITE.charging_points[0]


def per_circuit(loads: list[float]) -> dict[str, list[float]]:
    return {"main": [round(a, 3) for a in loads[0:3]], "garage": [round(a, 3) for a in loads[3:6]]}


def test_without_circuit_meters_it_is_the_buildings_load() -> None:
    assert other_loads_a(SITE, TREE, 13_800) == building_loads_a(SITE, TREE, 13_800)
    # 13.8 kW / 690 W per A = 20 A on each phase of main, nothing on garage
    assert per_circuit(other_loads_a(SITE, TREE, 13_800)) == {"main": [20, 20, 20], "garage": [0, 0, 0]}


def test_a_power_reading_less_the_evs_draw_sits_on_the_circuit_balanced() -> None:
    # garage reads 13.8 kW; cp1's EV draws 10 A on three phases (6.9 kW): a 6.9 kW heat pump, 10 A a phase.
    # The building's 13.8 kW (grid less EVs) already holds the heat pump: main is max(20, 10) = 20 A
    ev = EvDraw.at(CP1, [10.0, 10.0, 10.0], None, 230.0)
    assert ev.power_w == pytest.approx(6_900)
    loads = other_loads_a(SITE, TREE, 13_800, [CircuitReading("garage", 13_800)], [ev])
    assert per_circuit(loads) == {"main": [20, 20, 20], "garage": [10, 10, 10]}


def test_per_phase_currents_put_a_single_phase_load_on_its_phase() -> None:
    # garage reads (26, 10, 10) A with the EV at 10 A a phase: a 16 A heat pump on L1 alone.
    # Building 4140 W = 6 A a phase on main; main's L1 takes the larger, 16 A
    ev = EvDraw.at(CP1, [10.0, 10.0, 10.0], 6_900, 230.0)
    reading = CircuitReading("garage", 10_580, (26.0, 10.0, 10.0))
    loads = other_loads_a(SITE, TREE, 4_140, [reading], [ev])
    assert per_circuit(loads) == {"main": [16, 6, 6], "garage": [16, 0, 0]}


def test_the_evs_draw_never_makes_a_load_negative() -> None:
    # the EV's meter is newer than the circuit's: 8 kW drawn, 5 kW read, 0 A left, not -4.3 A
    ev = EvDraw("garage", (11.6, 11.6, 11.6), 8_000)
    loads = other_loads_a(SITE, TREE, 0, [CircuitReading("garage", 5_000)], [ev])
    assert per_circuit(loads)["garage"] == [0, 0, 0]


def test_an_unusable_circuit_meter_leaves_the_fuse_less_the_stations_safe_limits() -> None:
    # garage's meter is stale: 32 A less cp1's and cp2's 6 A safe limits = 20 A a phase on garage;
    # main takes max(building 5 A, 20 A) = 20 A
    loads = other_loads_a(SITE, TREE, 3_450, [CircuitReading("garage", None)], [], {"cp1": 6.0, "cp2": 6.0})
    assert per_circuit(loads) == {"main": [20, 20, 20], "garage": [20, 20, 20]}


def test_the_building_on_a_metered_circuit_is_counted_once() -> None:
    # the building hangs on garage and garage is metered (non-EV 2760 W = 4 A): max(10 A building, 4 A)
    site = Site("s", SITE.grid, SITE.circuits, SITE.charging_points, building_circuit="garage")
    tree = check_site(site)
    loads = other_loads_a(site, tree, 6_900, [CircuitReading("garage", 2_760)])
    assert per_circuit(loads) == {"main": [10, 10, 10], "garage": [10, 10, 10]}


def test_nested_meters_take_the_larger_not_the_sum() -> None:
    # main metered too: 15 A a phase non-EV in all; garage 16 A on L1 alone (read a step later)
    readings = [CircuitReading("main", 10_350), CircuitReading("garage", 3_680, (16.0, 0.0, 0.0))]
    loads = other_loads_a(SITE, TREE, 0, readings)
    assert per_circuit(loads) == {"main": [16, 15, 15], "garage": [16, 0, 0]}


def test_an_evs_draw_counts_at_most_its_limit_in_force() -> None:
    # cp1's station last said 16 A (11.04 kW) but its limit is now 6 A: 6 A and 4140 W are subtracted
    ev = EvDraw.at(CP1, [16.0, 16.0, 16.0], 11_040, 230.0, limit_a=6.0)
    assert ev.current_a == (6.0, 6.0, 6.0)
    assert ev.power_w == pytest.approx(4_140)


def test_a_rotated_single_phase_station_draws_on_its_grid_phase() -> None:
    point = ChargingPoint("cp3", "garage", 1, 2, 32.0)
    assert EvDraw.at(point, [16.0, 0.0, 0.0], None, 230.0).current_a == (0.0, 16.0, 0.0)


def _table(n: int) -> DemandTable:
    now = datetime(2026, 3, 2, 8, tzinfo=UTC)
    evs = [
        EvSession.at(point, Preferences(20_000, 30_000, now + timedelta(hours=2)), 0)
        for point in SITE.charging_points[:n]
    ]
    return demand_table(evs, now, 10.0, SITE.voltage_v)


def test_a_heat_pump_on_the_garage_lowers_its_evs_limits_within_its_fuse() -> None:
    table = _table(2)
    free = split(table, TREE, other_loads_a(SITE, TREE, 0), 40_000, Strategy.EQUAL)
    assert [lim.current_a for lim in free.limits] == [16.0, 16.0]
    # a 13.8 kW heat pump (20 A a phase) on garage: 12 A left under its 32 A fuse for both EVs
    loads = other_loads_a(SITE, TREE, 13_800, [CircuitReading("garage", 13_800 + 22_080)], [
        EvDraw("garage", (16.0, 16.0, 16.0), 11_040),
        EvDraw("garage", (16.0, 16.0, 16.0), 11_040),
    ])  # fmt: skip
    assert per_circuit(loads)["garage"] == [20, 20, 20]
    held = split(table, TREE, loads, 40_000, Strategy.EQUAL)
    assert sum(lim.current_a for lim in held.limits) <= 12.0
    assert {lim.reason for lim in held.limits} == {"fuse:garage:L1"}


def test_an_unusable_meter_counts_at_least_its_last_measured_load() -> None:
    # the safe limits leave 20 A a phase; the heat pump measured at 24 A on L1 before the meter fell silent
    readings = [CircuitReading("garage", 5_520, (24.0, 0.0, 0.0))]
    last = measured_loads_a(SITE, TREE, readings)
    assert last == {"garage": (24.0, 0.0, 0.0)}
    loads = other_loads_a(SITE, TREE, 0, [CircuitReading("garage", None)], [], {"cp1": 6.0, "cp2": 6.0}, last)
    assert per_circuit(loads)["garage"] == [24, 20, 20]

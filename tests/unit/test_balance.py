"""The EMS balance, eq. 3.2.6.1–4, on hand-worked examples."""

import pytest

from chargeflow.ems.balance import EssReason, GrantReason, ess_discharge_limit_w, grant, settle
from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import Ess, GridConnection

GRID = GridConnection(max_import_w=60_000, max_export_w=30_000)
ESS = Ess("main", capacity_wh=40_000, min_wh=5_000, max_charge_w=10_000, max_discharge_w=10_000)
BUILDING = BuildingPower(consumption_w=18_000, generation_w=4_000)  # net 14 kW: 46 kW left for EVs


def test_everything_wished_fits() -> None:
    g = grant(5_000, 30_000, BUILDING, GRID, ESS, EssState(20_000), 60)
    assert (g.granted_w, g.feasible, g.reason, g.ess_reserved_w) == (30_000, True, GrantReason.WISHED, 0)


def test_grid_limit_caps_the_wish_but_not_the_need() -> None:
    g = grant(5_000, 50_000, BUILDING, GRID, ESS, EssState(20_000), 60)
    assert g.granted_w == 46_000  # 60 kW − (18 − 4) kW
    assert g.reason is GrantReason.GRID_IMPORT
    assert g.feasible


def test_ess_covers_needs_beyond_the_grid_limit() -> None:
    # 3.2.6.3: 50 kW needed, 46 kW from the grid; the ESS gives the missing 4 kW (below its 10 kW limit).
    g = grant(50_000, 70_000, BUILDING, GRID, ESS, EssState(20_000), 60)
    assert g.granted_w == 50_000
    assert g.ess_reserved_w == pytest.approx(4_000)
    assert g.reason is GrantReason.ESS_COVERS_NEEDS
    assert g.feasible


def test_ess_power_limit_makes_needs_infeasible() -> None:
    g = grant(60_000, 70_000, BUILDING, GRID, ESS, EssState(20_000), 60)
    assert g.granted_w == 56_000  # 46 kW grid + 10 kW ESS, never more
    assert not g.feasible
    assert g.reason is GrantReason.NEEDS_EXCEED_ESS_POWER


def test_ess_energy_limit_keeps_e_min_at_the_end_of_the_step() -> None:
    # 3.2.6.4: 100 Wh above E_min over a 900 s step allow 400 W of discharge, not the 10 kW of its inverter.
    state = EssState(5_100)
    assert ess_discharge_limit_w(ESS, state, 900) == pytest.approx(400)
    g = grant(50_000, 50_000, BUILDING, GRID, ESS, state, 900)
    assert g.granted_w == pytest.approx(46_400)
    assert g.reason is GrantReason.NEEDS_EXCEED_ESS_ENERGY
    assert not g.feasible


def test_without_ess_needs_beyond_the_grid_are_reported() -> None:
    g = grant(50_000, 50_000, BUILDING, GRID, None, None, 60)
    assert (g.granted_w, g.feasible, g.reason) == (46_000, False, GrantReason.NEEDS_EXCEED_GRID)


def test_building_alone_over_the_limit_gets_no_ev_power() -> None:
    g = grant(0, 20_000, BuildingPower(75_000), GRID, None, None, 60)
    assert (g.granted_w, g.reason) == (0, GrantReason.BUILDING_OVER_GRID)
    g = grant(5_000, 20_000, BuildingPower(75_000), GRID, None, None, 60)
    assert (g.granted_w, g.feasible, g.reason) == (0, False, GrantReason.BUILDING_OVER_GRID)


def test_bad_demand_is_refused() -> None:
    with pytest.raises(ValueError, match="P_needed"):
        grant(10, 5, BUILDING, GRID, None, None, 60)


def test_settle_discharges_just_enough_for_the_import_limit() -> None:
    s = settle(BUILDING, 50_000, GRID, ESS, EssState(20_000), 60)
    assert s.discharge_w == pytest.approx(4_000)
    assert s.grid_w == pytest.approx(60_000)
    assert s.reason is EssReason.COVERS_IMPORT


def test_settle_stores_surplus_pv_within_power_and_capacity() -> None:
    sunny = BuildingPower(consumption_w=5_000, generation_w=30_000)
    s = settle(sunny, 10_000, GRID, ESS, EssState(20_000), 60)
    assert s.discharge_w == -10_000  # charging at its power limit
    assert s.grid_w == -5_000
    nearly_full = settle(sunny, 10_000, GRID, ESS, EssState(39_950), 60)
    assert nearly_full.discharge_w == pytest.approx(-3_000)  # 50 Wh of room in 60 s


def test_settle_reports_export_beyond_what_can_be_absorbed() -> None:
    flood = BuildingPower(consumption_w=0, generation_w=60_000)
    s = settle(flood, 5_000, GRID, ESS, EssState(20_000), 60)
    assert s.discharge_w == -10_000
    assert s.grid_w == -45_000
    assert s.reason is EssReason.EXPORT_OVER_LIMIT


def test_settle_charge_is_bounded_by_fuse_room() -> None:
    sunny = BuildingPower(consumption_w=0, generation_w=20_000)
    s = settle(sunny, 0, GRID, ESS, EssState(20_000), 60, ess_charge_room_w=2_500)
    assert s.discharge_w == -2_500


def test_net_meter_variant_recovers_the_building() -> None:
    # Meter 20 kW with 8 kW of EVs and the ESS discharging 2 kW: the building draws 14 kW net.
    b = BuildingPower.from_net_meter(meter_w=20_000, ev_w=8_000, ess_discharge_w=2_000)
    assert b.net_w == 14_000
    assert BuildingPower.from_net_meter(meter_w=-5_000, ev_w=3_000, ess_discharge_w=0).generation_w == 8_000


def test_a_careful_controller_counts_load_up_and_generation_down() -> None:
    # 45 kW of load and 70 kW of PV read with a 3 % margin: 46.35 kW and 67.9 kW; the grant on a 60 kW
    # connection shrinks by 3.45 kW, what a reading 1.5 % off on both would otherwise take over the limit.
    read = BuildingPower(consumption_w=45_000, generation_w=70_000)
    careful = read.with_margin(3.0)
    assert careful.consumption_w == pytest.approx(46_350)
    assert careful.generation_w == pytest.approx(67_900)
    grid = GridConnection(60_000, 30_000)
    assert grant(0, 200_000, read, grid, None, None, 60).granted_w - grant(
        0, 200_000, careful, grid, None, None, 60
    ).granted_w == pytest.approx(3_450)

"""Each station's safe limit (``csm.safe``), worked by hand."""

from __future__ import annotations

from chargeflow.csm.safe import safe_currents
from chargeflow.site.model import ChargingPoint, Circuit, GridConnection, Site
from chargeflow.site.tree import check_site


def _site(grid_w: float, points: tuple[ChargingPoint, ...], yard_a: float = 32.0) -> Site:
    circuits = (
        Circuit("main", None, (63.0, 63.0, 63.0)),
        Circuit("yard", "main", (yard_a, yard_a, yard_a)),
    )
    return Site("s", GridConnection(grid_w, 0.0), circuits, points, voltage_v=230.0)


def test_the_grid_share_binds_where_it_is_smallest() -> None:
    points = tuple(ChargingPoint(f"cp{i}", "yard", max_current_a=32.0) for i in range(4))
    site = _site(30_000.0, points)
    # grid: 30 kW over 4 × 3 phases at 230 V = 10.87 A; yard: 32 A / 4 = 8 A; main: 63 / 4 = 15.75 A
    assert safe_currents(site, check_site(site)) == {f"cp{i}": 8.0 for i in range(4)}


def test_the_building_reserve_comes_off_the_fuses_on_its_path_and_the_grid() -> None:
    points = (ChargingPoint("a", "main", max_current_a=16.0), ChargingPoint("b", "yard", max_current_a=16.0))
    site = _site(20_000.0, points)
    # building 13.8 kW on main: 20 A a phase; main leaves 43 A / 2 = 21.5 A;
    # the grid (20 - 13.8) kW / 6 / 230 V = 4.49 A
    assert safe_currents(site, check_site(site), 13_800.0) == {"a": 0.0, "b": 0.0}  # below 6 A: 0
    # building 6.9 kW: grid (13.1 kW) / 1380 = 9.49 A, rounded down to 9.4
    assert safe_currents(site, check_site(site), 6_900.0) == {"a": 9.4, "b": 9.4}


def test_single_phase_points_share_only_their_phase() -> None:
    points = (
        ChargingPoint("p1", "yard", phases=1, l1_phase=1, max_current_a=32.0),
        ChargingPoint("p2", "yard", phases=1, l1_phase=1, max_current_a=32.0),
        ChargingPoint("p3", "yard", phases=1, l1_phase=2, max_current_a=32.0),
    )
    site = _site(100_000.0, points, yard_a=20.0)
    # L1 of the yard: 20 A / 2 = 10 A; L2: 20 A alone; the station's own 32 A and the grid do not bind
    assert safe_currents(site, check_site(site)) == {"p1": 10.0, "p2": 10.0, "p3": 20.0}

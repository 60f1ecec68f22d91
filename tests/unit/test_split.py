"""The split of P_granted into station limits, on hand-worked examples (230 V)."""

from datetime import UTC, datetime, timedelta

import pytest

from chargeflow.csm.demand import EvSession, Preferences, demand_table
from chargeflow.csm.split import SplitResult, Strategy, split
from chargeflow.site.model import Circuit
from chargeflow.site.tree import CircuitTree

NOW = datetime(2026, 1, 1, 8, tzinfo=UTC)
# main: 63 A on every phase; sub: 32 A on L1 and L2 but only 16 A on L3.
TREE = CircuitTree.build(
    [Circuit("main", None, (63.0, 63.0, 63.0)), Circuit("sub", "main", (32.0, 32.0, 16.0))]
)
NO_LOAD = [0.0] * 6


def ev(
    id: str,
    phases: int = 3,
    l1: int = 1,
    circuit: str = "sub",
    minutes: float = 600,
    needed_wh: int = 0,
    wished_wh: int = 50_000,
    ev_max: float | None = None,
    priority: int = 0,
    min_a: float = 6.0,
) -> EvSession:
    prefs = Preferences(needed_wh, wished_wh, NOW + timedelta(minutes=minutes))
    return EvSession(id, circuit, phases, l1, min_a, 32.0, prefs, ev_max_current_a=ev_max, priority=priority)


def run(
    sessions: list[EvSession], granted_w: float, strategy: Strategy, loads: list[float] = NO_LOAD
) -> SplitResult:
    return split(demand_table(sessions, NOW, 60, 230), TREE, loads, granted_w, strategy, "grid_import_limit")


def currents(r: SplitResult) -> dict[str, float]:
    return {lim.id: lim.current_a for lim in r.limits}


def reasons(r: SplitResult) -> dict[str, str]:
    return {lim.id: lim.reason for lim in r.limits}


def test_equal_share_divides_the_grant() -> None:
    r = run([ev("a", circuit="main"), ev("b", circuit="main")], granted_w=32 * 690, strategy=Strategy.EQUAL)
    assert currents(r) == {"a": 16.0, "b": 16.0}
    assert reasons(r) == {"a": "grid_import_limit", "b": "grid_import_limit"}
    assert r.power_w == pytest.approx(22_080)


def test_phase_rotation_puts_a_single_phase_ev_on_the_weak_phase() -> None:
    # A single-phase EV wired to grid phase 3 meets the 16 A fuse of sub L3; on phase 1 it gets 32 A.
    r = run([ev("l3", phases=1, l1=3), ev("l1", phases=1, l1=1)], granted_w=100_000, strategy=Strategy.EQUAL)
    assert currents(r) == {"l3": 16.0, "l1": 32.0}
    assert reasons(r) == {"l3": "fuse:sub:L3", "l1": "station_max"}


def test_three_phase_ev_is_held_by_its_weakest_phase() -> None:
    r = run([ev("a")], granted_w=100_000, strategy=Strategy.EDF)
    assert currents(r) == {"a": 16.0}
    assert reasons(r) == {"a": "fuse:sub:L3"}


def test_building_load_on_a_parent_circuit_counts() -> None:
    loads = [50.0, 50.0, 50.0, 0.0, 0.0, 0.0]  # 50 A per phase on main: 13 A left for everything below
    r = run(
        [ev("a", phases=1, l1=1), ev("b", phases=1, l1=2)],
        granted_w=100_000,
        strategy=Strategy.EQUAL,
        loads=loads,
    )
    assert currents(r) == {"a": 13.0, "b": 13.0}
    assert reasons(r) == {"a": "fuse:main:L1", "b": "fuse:main:L2"}


def test_minimum_current_or_nothing() -> None:
    # 2 kW: a three-phase EV needs 6 A × 690 W/A = 4.14 kW to run, a single-phase one 1.38 kW.
    r = run([ev("three"), ev("one", phases=1, l1=2, minutes=700)], granted_w=2_000, strategy=Strategy.EDF)
    assert currents(r) == {"three": 0.0, "one": 8.6}
    assert reasons(r)["three"] == "grid_import_limit"


def test_equal_starts_as_many_as_fit_at_minimum_then_levels() -> None:
    # 15 A of single-phase power for four EVs on L1 and L2: two run at 7.5 A, two wait.
    evs = [ev(f"e{i}", phases=1, l1=1 + i % 2, minutes=600 + i) for i in range(4)]
    r = run(evs, granted_w=15 * 230, strategy=Strategy.EQUAL)
    assert sorted(currents(r).values()) == [0.0, 0.0, 7.5, 7.5]


def test_equal_gives_what_a_small_ev_leaves_to_the_others() -> None:
    # 40 A of single-phase power; the EV that takes only 10 A leaves 30 A to the other.
    pair = [ev("small", phases=1, circuit="main", ev_max=10), ev("big", phases=1, circuit="main")]
    r = run(pair, granted_w=40 * 230, strategy=Strategy.EQUAL)
    assert currents(r) == {"small": 10.0, "big": 30.0}
    assert reasons(r) == {"small": "ev_max", "big": "grid_import_limit"}


def test_edf_serves_the_earliest_departure_first() -> None:
    r = run([ev("late", minutes=600), ev("early", minutes=120)], granted_w=10 * 690, strategy=Strategy.EDF)
    assert currents(r) == {"late": 0.0, "early": 10.0}


def test_llf_serves_the_least_laxity_first_where_edf_would_not() -> None:
    # "early" leaves in 2 h needing 5 kWh (laxity ≈ 2 h − 27 min); "big" leaves in 3 h needing 30 kWh
    # (laxity ≈ 3 h − 2 h 43 min): least laxity is "big", earliest deadline is "early".
    sessions = [
        ev("early", minutes=120, needed_wh=5_000, wished_wh=5_000),
        ev("big", minutes=180, wished_wh=30_000),
    ]
    sessions[1] = ev("big", minutes=180, needed_wh=30_000, wished_wh=30_000)
    r_llf = run(sessions, granted_w=10 * 690, strategy=Strategy.LLF)
    r_edf = run(sessions, granted_w=10 * 690, strategy=Strategy.EDF)
    assert currents(r_llf) == {"early": 0.0, "big": 10.0}
    assert currents(r_edf) == {"early": 10.0, "big": 0.0}


def test_priority_orders_the_surplus_but_needs_come_first() -> None:
    # "vip" has priority but no need; "urgent" (an EV of 16 A) must charge at full rate now: 24 min at
    # 11.04 kW after this step give 4.4 kWh of the 5 kWh it needs.
    sessions = [
        ev("vip", circuit="main", priority=5),
        ev("urgent", circuit="main", minutes=25, needed_wh=5_000, wished_wh=5_000, ev_max=16),
    ]
    r = run(sessions, granted_w=25 * 690, strategy=Strategy.PRIORITY)
    assert currents(r) == {"vip": 9.0, "urgent": 16.0}
    assert r.needs_met


def test_needs_unmet_are_flagged_with_their_reason() -> None:
    urgent = ev("a", circuit="main", minutes=20, needed_wh=5_000, wished_wh=5_000, ev_max=16)
    r = run([urgent], granted_w=8 * 690, strategy=Strategy.EDF)
    (limit,) = r.limits
    assert (limit.current_a, limit.need_met, limit.reason) == (8.0, False, "grid_import_limit")
    assert not r.needs_met


def test_headroom_left_is_reported_per_phase() -> None:
    r = run([ev("a", phases=1, l1=2)], granted_w=10 * 230, strategy=Strategy.EDF)
    assert r.headroom_a == (63.0, 53.0, 63.0, 32.0, 22.0, 16.0)

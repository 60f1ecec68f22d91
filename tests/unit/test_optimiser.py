"""The predictive optimiser's LP (``ems.optimiser``) and its linear form of phasor limits (``ems.phasor``)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeflow.ems.optimiser import ChargeRequest, Plan, Planner, rolling_boundaries
from chargeflow.ems.phasor import line_currents, linearise, phasor_matrix, station_classes


def caltech_like(
    secondary_a: float = 100.0, primary_a: float = 40.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three station groups on the phases AB, BC, CA (angles 30°, −90°, 150°) behind a delta–wye
    transformer: secondary line currents AB − CA, BC − AB, CA − BC, primary ones (a − c)/4 of those.
    Two stations per group; columns: AB, AB, BC, BC, CA, CA."""
    ab, bc, ca = (
        np.array([1, 1, 0, 0, 0, 0.0]),
        np.array([0, 0, 1, 1, 0, 0.0]),
        np.array([0, 0, 0, 0, 1, 1.0]),
    )
    s_a, s_b, s_c = ab - ca, bc - ab, ca - bc
    matrix = np.vstack((s_a, s_b, s_c, (s_a - s_c) / 4, (s_b - s_a) / 4, (s_c - s_b) / 4))
    angles = np.array([30, 30, -90, -90, 150, 150.0])
    limits = np.array([secondary_a] * 3 + [primary_a] * 3)
    return matrix, angles, limits


def test_stations_with_equal_columns_share_a_class() -> None:
    matrix, angles, _ = caltech_like()
    classes = station_classes(phasor_matrix(matrix, angles))
    assert classes.of_station[0] == classes.of_station[1]
    assert classes.of_station[2] == classes.of_station[3]
    assert len(set(classes.of_station.tolist())) == 3


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 200), min_size=6, max_size=6))
def test_rates_within_the_linear_rows_are_within_every_phasor_limit(raw: list[float]) -> None:
    matrix, angles, limits = caltech_like()
    phasors = phasor_matrix(matrix, angles)
    lin = linearise(phasors, limits)
    rates = np.asarray(raw)
    s = np.bincount(lin.classes.of_station, weights=rates, minlength=lin.rows.shape[1])
    worst = float(np.max(lin.rows @ s / lin.bounds))
    if worst > 1:
        rates = rates / worst  # scale onto the polygon's boundary: the hardest case for the disc
    assert np.all(line_currents(phasors, rates) <= limits * (1 + 1e-9))


def test_the_polygon_gives_up_at_most_one_minus_cos_half_step() -> None:
    matrix, angles, limits = caltech_like()
    phasors = phasor_matrix(matrix, angles)
    lin = linearise(phasors, limits, max_step_deg=5.0)
    # Load only AB and CA in a ratio that points the secondary A current along each direction of its sector.
    for share in np.linspace(0.0, 1.0, 41):
        rates = np.array([share, 0, 0, 0, 1 - share, 0]) + 1e-12
        s = np.bincount(lin.classes.of_station, weights=rates, minlength=lin.rows.shape[1])
        scale = float(np.min(lin.bounds / np.maximum(lin.rows @ s, 1e-15)))
        exact = float(np.min(limits / line_currents(phasors, rates)))
        assert scale <= exact * (1 + 1e-9)
        assert scale >= exact * math.cos(math.radians(2.5)) * (1 - 1e-9)


def single_limit(limit_a: float, n_stations: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.ones((1, n_stations)), np.zeros(n_stations), np.array([limit_a])


def plan_of(
    limit_a: float, energy: list[float], end: list[int], max_a: list[float], start: list[int] | None = None
) -> Plan:
    n = len(energy)
    matrix, angles, limits = single_limit(limit_a, n)
    lin = linearise(phasor_matrix(matrix, angles), limits)
    request = ChargeRequest(
        station=np.arange(n, dtype=np.int64),
        energy_a_slots=np.asarray(energy, dtype=np.float64),
        start_slot=np.asarray(start or [0] * n, dtype=np.int64),
        end_slot=np.asarray(end, dtype=np.int64),
        max_a=np.asarray(max_a, dtype=np.float64),
    )
    n_slots = max(end)
    return Planner(slots_per_day=288).solve(lin, request, np.arange(n_slots + 1, dtype=np.int64))


def test_a_lone_ev_charges_at_its_maximum_from_the_first_slot() -> None:
    plan = plan_of(100.0, [64.0], [10], [32.0])
    assert plan.ok
    assert plan.rates_a[0, :2].tolist() == [32.0, 32.0]
    assert plan.rates_a[0, 2:].sum() == 0.0


def test_deadlines_are_met_when_the_capacity_allows_it() -> None:
    # 32 A for four slots = 128 A·slots. EV 0 needs 32 by slot 2, EV 1 needs 64 by slot 4: both fit, but
    # only if EV 0 gets its share before slot 2.
    plan = plan_of(32.0, [32.0, 64.0], [2, 4], [32.0, 32.0])
    delivered = plan.rates_a.sum(axis=1)
    assert np.allclose(delivered, [32.0, 64.0])
    assert np.all(plan.rates_a.sum(axis=0) <= 32.0 + 1e-7)


def test_an_overloaded_limit_delivers_exactly_its_capacity() -> None:
    plan = plan_of(20.0, [100.0, 100.0, 100.0], [3, 4, 5], [32.0, 32.0, 32.0])
    assert abs(plan.rates_a.sum() - 20.0 * 5) < 1e-6
    assert np.all(plan.rates_a.sum(axis=0) <= 20.0 + 1e-7)


def test_an_ev_is_never_planned_outside_its_stay() -> None:
    plan = plan_of(100.0, [50.0, 50.0], [4, 8], [32.0, 32.0], start=[0, 5])
    assert plan.rates_a[0, 4:].sum() == 0.0
    assert plan.rates_a[1, :5].sum() == 0.0
    assert abs(plan.rates_a[1].sum() - 50.0) < 1e-6


def test_rolling_boundaries_are_fine_first_and_cover_the_horizon() -> None:
    b = rolling_boundaries(288)
    widths = np.diff(b)
    assert b[0] == 0
    assert b[-1] == 288
    assert widths[:12].tolist() == [1] * 12
    assert widths.max() == 6
    assert len(widths) < 70
    assert rolling_boundaries(5).tolist() == [0, 1, 2, 3, 4, 5]


def test_a_coarse_block_counts_a_leaving_ev_for_the_whole_block() -> None:
    # Two EVs on a 32 A limit, blocks of 4 slots; EV 0 leaves after 2 slots of the second block. The block's
    # rate holds for all its slots on the limit, so their rates there add up to no more than 32 A.
    n = 2
    matrix, angles, limits = single_limit(32.0, n)
    lin = linearise(phasor_matrix(matrix, angles), limits)
    request = ChargeRequest(
        np.arange(n, dtype=np.int64),
        np.array([500.0, 500.0]),
        np.zeros(n, dtype=np.int64),
        np.array([6, 8], dtype=np.int64),
        np.array([32.0, 32.0]),
    )
    plan = Planner(slots_per_day=288).solve(lin, request, np.array([0, 4, 8], dtype=np.int64))
    assert np.all(plan.rates_a.sum(axis=0) <= 32.0 + 1e-7)
    assert abs(plan.rates_a.sum(axis=0)[0] - 32.0) < 1e-6


def test_the_deadline_tie_break_serves_the_ev_leaving_first() -> None:
    # Both EVs can be served fully in either order on a 32 A limit; only the tie-break decides who goes first.
    matrix, angles, limits = single_limit(32.0, 2)
    lin = linearise(phasor_matrix(matrix, angles), limits)
    request = ChargeRequest(
        np.arange(2, dtype=np.int64),
        np.array([32.0, 32.0]),
        np.zeros(2, dtype=np.int64),
        np.array([8, 4], dtype=np.int64),
        np.array([32.0, 32.0]),
    )
    plan = Planner(slots_per_day=288, deadline_order=10.0).solve(lin, request, np.arange(9, dtype=np.int64))
    assert plan.rates_a[:, 0].tolist() == [0.0, 32.0]
    assert plan.rates_a[:, 1].tolist() == [32.0, 0.0]

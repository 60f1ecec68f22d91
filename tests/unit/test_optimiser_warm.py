"""The optimiser's warm start: a rolling plan re-solved from the rest of its last one (``ems.optimiser``)."""

from __future__ import annotations

import numpy as np
import pytest

from chargeflow.ems import optimiser
from chargeflow.ems.optimiser import ChargeRequest, Planner, rolling_boundaries
from chargeflow.ems.phasor import LinearLimits, linearise, phasor_matrix


def three_phase_site(n: int, rng: np.random.Generator) -> LinearLimits:
    """``n`` single-phase stations spread over three phase fuses of 400 A and a 900 A grant."""
    matrix = np.zeros((4, n))
    matrix[rng.integers(0, 3, n), np.arange(n)] = 1.0
    matrix[3] = 1.0
    return linearise(phasor_matrix(matrix, np.zeros(n)), np.array([400.0, 400.0, 400.0, 900.0]))


def rolling(planner: Planner, steps: int, n: int = 300) -> list[tuple[float, int, float]]:
    """``steps`` steps of a rolling plan: each applies its first slot and moves on one slot. Returns per
    step the plan's energy, the simplex iterations and the energy planned for the first slot."""
    rng = np.random.default_rng(1)
    limits = three_phase_site(n, rng)
    energy = rng.uniform(50.0, 400.0, n)
    departure = rng.integers(5, 200, n)
    out = []
    for now in range(steps):
        end = np.maximum(departure - now, 1)
        request = ChargeRequest(
            np.arange(n, dtype=np.int64), energy, np.zeros(n, dtype=np.int64), end, np.full(n, 32.0)
        )
        boundaries = rolling_boundaries(int(end.max()), origin_slot=now)
        plan = planner.solve(limits, request, boundaries, keys=np.arange(n, dtype=np.int64), origin_slot=now)
        assert plan.ok
        widths = np.minimum(np.diff(boundaries)[None, :], np.maximum(end[:, None] - boundaries[:-1], 0))
        out.append((float((plan.rates_a * widths).sum()), planner.iterations, float(plan.first_a.sum())))
        energy = np.maximum(energy - plan.first_a, 0.0)
    return out


def test_a_warm_solve_finds_the_same_optimum_in_far_fewer_iterations() -> None:
    cold = rolling(Planner(slots_per_day=288, warm=False), 5)
    warm_planner = Planner(slots_per_day=288, warm=True)
    warm = rolling(warm_planner, 5)
    assert warm_planner.warm_starts == 4  # every solve after the first
    for (e_cold, _, first_cold), (e_warm, _, first_warm) in zip(cold, warm, strict=True):
        assert abs(e_cold - e_warm) < 1e-6 * e_cold  # the same energy: both optimal
        assert abs(first_cold - first_warm) < 1e-6 * first_cold
    iterations_cold = sum(it for _, it, _ in cold[1:])
    iterations_warm = sum(it for _, it, _ in warm[1:])
    assert iterations_warm < iterations_cold / 4


def test_without_keys_a_planner_solves_cold() -> None:
    planner = Planner(slots_per_day=288, warm=True)
    rng = np.random.default_rng(2)
    limits = three_phase_site(10, rng)
    request = ChargeRequest(
        np.arange(10, dtype=np.int64),
        np.full(10, 40.0),
        np.zeros(10, dtype=np.int64),
        np.full(10, 8, dtype=np.int64),
        np.full(10, 32.0),
    )
    for _ in range(2):
        planner.solve(limits, request, np.arange(9, dtype=np.int64))
    assert planner.warm_starts == 0


def test_an_ev_that_now_wants_less_than_the_last_plan_gave_it_still_gets_a_feasible_start() -> None:
    # The rest of the last plan would deliver more than the EV still wants: the start is scaled down, the
    # solve is warm and the plan never exceeds the energy.
    planner = Planner(slots_per_day=288, warm=True)
    rng = np.random.default_rng(3)
    limits = three_phase_site(4, rng)

    def request(energy: float) -> ChargeRequest:
        return ChargeRequest(
            np.arange(4, dtype=np.int64),
            np.full(4, energy),
            np.zeros(4, dtype=np.int64),
            np.full(4, 20, dtype=np.int64),
            np.full(4, 32.0),
        )

    keys = np.arange(4, dtype=np.int64)
    planner.solve(limits, request(200.0), rolling_boundaries(20, origin_slot=0), keys=keys)
    boundaries = rolling_boundaries(19, origin_slot=1)
    plan = planner.solve(limits, request(10.0), boundaries, keys=keys, origin_slot=1)
    assert planner.warm_starts == 1
    assert plan.ok
    widths = np.diff(plan.boundaries)
    assert np.all((plan.rates_a * widths).sum(axis=1) <= 10.0 + 1e-6)
    assert np.allclose((plan.rates_a * widths).sum(axis=1), 10.0)


def test_coarse_blocks_stay_put_in_absolute_time() -> None:
    for origin in range(0, 13):
        now = rolling_boundaries(288, origin_slot=origin) + origin
        later = rolling_boundaries(287, origin_slot=origin + 1) + origin + 1
        coarse_now = set(now[now >= origin + 12].tolist())
        coarse_later = set(later[later >= origin + 1 + 12].tolist())
        # Beyond the fine part the next step's edges are this step's, bar at most two: where the fine part
        # and where the 3-slot blocks now end (and the horizon's own end).
        assert len(coarse_later - coarse_now - {origin + 288}) <= 2
        assert len(coarse_later) >= 40
        widths = np.diff(rolling_boundaries(288, origin_slot=origin))
        assert widths.max() == 6
        assert widths[:12].tolist() == [1] * 12


def test_the_direct_and_the_class_sum_forms_have_the_same_optimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """A site whose classes have two rows each is built in the direct form; forcing the class sums
    (``DIRECT_ROWS`` 0) gives another LP with the same optimum, and every plan keeps every row."""
    rng = np.random.default_rng(3)
    n = 120
    limits = three_phase_site(n, rng)
    request = ChargeRequest(
        np.arange(n, dtype=np.int64),
        rng.uniform(20.0, 300.0, n),
        rng.integers(0, 20, n),
        rng.integers(25, 150, n),
        np.full(n, 32.0),
    )
    boundaries = rolling_boundaries(150)
    direct = Planner(slots_per_day=288, warm=False)
    plan_direct = direct.solve(limits, request, boundaries)
    rows_direct = direct._highs.getNumRow()
    monkeypatch.setattr(optimiser, "DIRECT_ROWS", 0)
    summed = Planner(slots_per_day=288, warm=False)
    plan_summed = summed.solve(limits, request, boundaries)
    assert plan_direct.ok
    assert plan_summed.ok
    assert summed._highs.getNumRow() > rows_direct  # the class-sum rows are really there
    value_direct = direct._highs.getInfo().objective_function_value
    value_summed = summed._highs.getInfo().objective_function_value
    assert value_direct < -1.0  # a real plan, not an empty one
    assert abs(value_direct - value_summed) < 1e-7 * abs(value_direct)
    for plan in (plan_direct, plan_summed):
        sums = np.zeros((limits.rows.shape[1], plan.rates_a.shape[1]))
        np.add.at(sums, limits.classes.of_station, plan.rates_a)
        assert np.all(limits.rows @ sums <= limits.bounds[:, None] + 1e-6)

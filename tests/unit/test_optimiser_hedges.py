"""The online plan's two hedges: the size tie-break (``Planner(size_order=…)``) and the phase hedge
(``ems.phase_hedge`` through ``ChargeRequest.earliness_scale``)."""

from __future__ import annotations

import numpy as np
import pytest

from chargeflow.ems.optimiser import ChargeRequest, Planner
from chargeflow.ems.phase_hedge import phase_earliness
from chargeflow.ems.phasor import LinearLimits, linearise, phasor_matrix


def one_limit(limit_a: float, n: int) -> LinearLimits:
    return linearise(phasor_matrix(np.ones((1, n)), np.zeros(n)), np.array([limit_a]))


def request(energy: list[float], end: list[int], scale: list[float] | None = None) -> ChargeRequest:
    n = len(energy)
    return ChargeRequest(
        station=np.arange(n, dtype=np.int64),
        energy_a_slots=np.asarray(energy, dtype=np.float64),
        start_slot=np.zeros(n, dtype=np.int64),
        end_slot=np.asarray(end, dtype=np.int64),
        max_a=np.full(n, 32.0),
        earliness_scale=None if scale is None else np.asarray(scale, dtype=np.float64),
    )


def test_the_size_tie_break_completes_the_smaller_session_without_losing_energy() -> None:
    # 4 slots of 32 A for both: 128 A-slots, asked 64 + 96. Any split of the 128 delivers as much; the
    # size tie-break finishes the EV with less to go and leaves the larger one short.
    plan = Planner(slots_per_day=288, size_order=1.0).solve(
        one_limit(32.0, 2), request([64.0, 96.0], [4, 4]), np.arange(5, dtype=np.int64)
    )
    delivered = plan.rates_a.sum(axis=1)
    assert delivered.sum() == pytest.approx(128.0)
    assert delivered[0] == pytest.approx(64.0)
    # ... and with the larger EV first in the list it is still the smaller one that is finished
    plan = Planner(slots_per_day=288, size_order=1.0).solve(
        one_limit(32.0, 2), request([96.0, 64.0], [4, 4]), np.arange(5, dtype=np.int64)
    )
    assert plan.rates_a.sum(axis=1)[1] == pytest.approx(64.0)


def test_the_size_tie_break_never_gives_up_energy_for_completion() -> None:
    # The small EV leaves after 1 slot, the large one stays 4: serving both delivers 32 + 96, more than
    # finishing either alone would; the tie-break must not trade that energy away.
    plan = Planner(slots_per_day=288, size_order=1.0).solve(
        one_limit(32.0, 2), request([16.0, 200.0], [1, 4]), np.arange(5, dtype=np.int64)
    )
    assert plan.rates_a.sum() == pytest.approx(128.0)
    assert plan.rates_a[0, 0] == pytest.approx(16.0)


def test_a_negative_earliness_scale_moves_an_evs_charging_to_the_end_of_its_stay() -> None:
    # Room for both at full current: the scale decides only when each charges. The EV with the scale
    # below 0 (a quiet phase) charges last, the other (the busy phase) first; both get all they asked.
    plan = Planner(slots_per_day=288, earliness=0.1).solve(
        one_limit(64.0, 2), request([64.0, 64.0], [6, 6], scale=[3.0, -0.5]), np.arange(7, dtype=np.int64)
    )
    assert plan.rates_a.sum(axis=1) == pytest.approx([64.0, 64.0])
    assert plan.rates_a[0, :2] == pytest.approx([32.0, 32.0])
    assert plan.rates_a[1, 4:] == pytest.approx([32.0, 32.0])
    assert plan.rates_a[1, :4].sum() == pytest.approx(0.0)


def test_the_busy_phase_gets_the_larger_earliness() -> None:
    stations = np.array([30.0, 30.0, 30.0, -90.0, 150.0])
    asked = {30.0: 60.0, -90.0: 20.0, 150.0: 10.0}  # mean 30: rel 2, 2/3, 1/3
    scale = phase_earliness(np.array([30.0, -90.0, 150.0]), stations, asked, strength=3.0)
    assert scale == pytest.approx([4.0, 0.0, -1.0])


def test_before_any_session_the_station_count_stands_for_the_demand() -> None:
    stations = np.array([30.0, 30.0, -90.0, 150.0])  # counts 2, 1, 1: mean 4/3
    scale = phase_earliness(np.array([30.0, 150.0]), stations, {}, strength=1.0)
    assert scale == pytest.approx([1.5, 0.75])


def test_strength_zero_or_balanced_phases_leave_the_earliness_alone() -> None:
    stations = np.array([30.0, -90.0, 150.0])
    phases = np.array([30.0, -90.0, 150.0])
    assert phase_earliness(phases, stations, {30.0: 9.0, -90.0: 1.0}, 0.0) == pytest.approx([1, 1, 1])
    balanced = {30.0: 5.0, -90.0: 5.0, 150.0: 5.0}
    assert phase_earliness(phases, stations, balanced, 6.0) == pytest.approx([1, 1, 1])

"""Rounding a plan's first slot to the currents stations accept (``ems.pilots``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from chargeflow.ems.phasor import line_currents, phasor_matrix
from chargeflow.ems.pilots import Pilots, round_to_pilots

CC = np.array([0.0, 8, 16, 24, 32])
AV = np.array([0.0, *range(6, 33)])


def one_limit(n: int, limit_a: float) -> tuple[np.ndarray, np.ndarray]:
    return phasor_matrix(np.ones((1, n)), np.zeros(n)), np.array([limit_a])


def test_rounding_down_then_up_uses_the_capacity_rounding_would_leave() -> None:
    # Three EVs planned at 10 A each with 8 A steps: flooring gives 8 A each (24 A). On a 30 A limit no
    # EV can go up a step (32 A); on 35 A exactly one can.
    phasors, limits = one_limit(3, 30.0)
    pilots = Pilots([CC] * 3, np.zeros(3, dtype=bool))
    rates = round_to_pilots(np.full(3, 10.0), np.zeros(3), np.full(3, 32.0), pilots, phasors, limits)
    assert rates.tolist() == [8.0, 8.0, 8.0]
    phasors, limits = one_limit(3, 35.0)
    rates = round_to_pilots(
        np.full(3, 10.0), np.array([0.0, 5.0, 0.0]), np.full(3, 32.0), pilots, phasors, limits
    )
    # 35 A allows one step up, and it goes to the EV that earlier rounding owes the most.
    assert rates.tolist() == [8.0, 16.0, 8.0]


def test_a_target_below_the_smallest_step_starts_the_ev_if_it_fits() -> None:
    phasors, limits = one_limit(2, 32.0)
    pilots = Pilots([AV, AV], np.zeros(2, dtype=bool))
    rates = round_to_pilots(np.array([3.0, 0.0]), np.zeros(2), np.full(2, 32.0), pilots, phasors, limits)
    assert rates.tolist() == [6.0, 0.0]


def test_continuous_stations_get_the_plan_as_it_is() -> None:
    phasors, limits = one_limit(2, 50.0)
    pilots = Pilots([np.array([0.0, 32.0])] * 2, np.ones(2, dtype=bool))
    rates = round_to_pilots(np.array([12.34, 20.5]), np.zeros(2), np.full(2, 32.0), pilots, phasors, limits)
    assert rates.tolist() == [12.34, 20.5]


def test_no_ev_is_raised_beyond_what_it_takes() -> None:
    phasors, limits = one_limit(1, 100.0)
    pilots = Pilots([CC], np.zeros(1, dtype=bool))
    rates = round_to_pilots(np.array([9.0]), np.zeros(1), np.array([8.0]), pilots, phasors, limits)
    assert rates.tolist() == [8.0]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 32), min_size=6, max_size=6),
    st.lists(st.floats(0, 10), min_size=6, max_size=6),
    st.floats(10, 120),
)
def test_rounded_pilots_are_allowed_and_within_every_phasor_limit(
    target: list[float], carry: list[float], limit_a: float
) -> None:
    angles = np.array([30, 30, -90, -90, 150, 150.0])
    ab, bc, ca = (
        np.array([1, 1, 0, 0, 0, 0.0]),
        np.array([0, 0, 1, 1, 0, 0.0]),
        np.array([0, 0, 0, 0, 1, 1.0]),
    )
    phasors = phasor_matrix(np.vstack((ab - ca, bc - ab, ca - bc)), angles)
    limits = np.full(3, limit_a)
    levels = [CC, AV, CC, AV, CC, AV]
    t = np.asarray(target)
    # The plan keeps the limits; scale the target onto them as a plan would.
    t = t / max(1.0, float(np.max(line_currents(phasors, t) / limits)))
    rates = round_to_pilots(
        t, np.asarray(carry), np.full(6, 32.0), Pilots(levels, np.zeros(6, dtype=bool)), phasors, limits
    )
    assert all(r in lv for r, lv in zip(rates.tolist(), levels, strict=True))
    assert np.all(line_currents(phasors, rates) <= limits + 1e-6)

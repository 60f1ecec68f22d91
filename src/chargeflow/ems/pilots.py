"""From a plan's first slot to the currents stations accept, without dropping the energy rounding would.

Stations take a current of 0 or one from a set: every ampere from 6 A to 32 A, or only 8, 16, 24 and 32 A
(ACN-Sim's AeroVironment and ClipperCreek models), or any value in [min, max] (continuous). Rounding every
planned current down is safe but loses up to one step per EV, every step: on a 20 kW Caltech transformer
with 8 A steps that is most of the capacity. So, after rounding down, the EVs are raised one allowed step
at a time, those owed the most first — this step's rounding loss plus what earlier steps' rounding still owes
them (the carry) — as long as every limit, checked exactly on its phasor, still holds. What rounding takes
from an EV now, the next steps give back, and the re-planned horizon sees the energy still missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from chargeflow.ems.phasor import ComplexArray

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_TOL = 1e-6


@dataclass(frozen=True, slots=True, eq=False)
class Pilots:
    """Allowed currents of each EV's station: ``levels[i]`` sorted ascending with 0 first, or for a
    continuous station its [min, max] interval."""

    levels: Sequence[FloatArray]
    continuous: BoolArray


def _floor(target: float, levels: FloatArray, continuous: bool) -> float:
    if continuous:
        lo, hi = float(levels[0]), float(levels[-1])
        return 0.0 if target < lo - _TOL or target <= _TOL else min(target, hi)
    below = levels[levels <= target + _TOL]
    return float(below[-1]) if below.size else 0.0


def _next_up(current: float, levels: FloatArray, continuous: bool) -> float | None:
    if continuous:
        return None if current > 0 or levels[0] <= 0 else float(levels[0])
    above = levels[levels > current + _TOL]
    return float(above[0]) if above.size else None


def round_to_pilots(
    target_a: FloatArray,
    carry_a: FloatArray,
    max_a: FloatArray,
    pilots: Pilots,
    phasors: ComplexArray,
    limits_a: FloatArray,
) -> FloatArray:
    """Currents each EV's station accepts, within every limit |phasors @ r| ≤ limits_a.

    ``phasors`` has one column per EV (its station's column). ``carry_a`` is what earlier rounding owes
    each EV, in A of one step; ``max_a`` the most each EV takes (no rounding up beyond it).
    """
    n = target_a.size
    rates = np.array(
        [_floor(float(target_a[i]), pilots.levels[i], bool(pilots.continuous[i])) for i in range(n)]
    )
    z = phasors @ rates
    # The plan holds the limits with a margin (inscribed polygon); if a limit is still exceeded after
    # rounding (only from numerical noise), step the EVs on it down, least owed first.
    owed = target_a - rates + carry_a
    for i in np.argsort(owed):
        over = np.abs(z) > limits_a + _TOL
        if not over.any():
            break
        if rates[i] > 0 and np.any(np.abs(phasors[over, i]) > 0):
            z -= phasors[:, i] * rates[i]
            rates[i] = 0.0
    for i in np.argsort(-owed, kind="stable"):
        if owed[i] <= _TOL or rates[i] >= max_a[i] - _TOL:
            continue
        up = _next_up(float(rates[i]), pilots.levels[i], bool(pilots.continuous[i]))
        if up is None:
            continue
        trial = z + phasors[:, i] * (up - rates[i])
        if np.all(np.abs(trial) <= limits_a + _TOL):
            z = trial
            rates[i] = up
    return rates

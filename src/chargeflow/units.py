"""Units and phase arithmetic, in one place so that every conversion is made once and the same way.

Names carry their unit (``power_w``, ``energy_wh``, ``current_a``). Power and current are floats; energy
inside the system is integer Wh. Grid phases are numbered 1, 2, 3.
"""

from __future__ import annotations

from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt

GRID_PHASES: Final = (1, 2, 3)
NOMINAL_VOLTAGE_V: Final = 230.0
SECONDS_PER_HOUR: Final = 3600.0

# Currents sent to stations are multiples of 0.1 A (OCPP charging-rate values carry one decimal).
CURRENT_STEP_A: Final = 0.1
_EPS: Final = 1e-6

FloatArray = npt.NDArray[np.float64]


def power_w(current_a: float, phases: int, voltage_v: float = NOMINAL_VOLTAGE_V) -> float:
    """Power drawn at ``current_a`` per phase on ``phases`` phases (phase-to-neutral voltage)."""
    return current_a * phases * voltage_v


def current_a(power_w: float, phases: int, voltage_v: float = NOMINAL_VOLTAGE_V) -> float:
    """Current per phase that carries ``power_w`` spread evenly over ``phases`` phases."""
    return power_w / (phases * voltage_v)


def power_for_energy(energy_wh: float, seconds: float) -> float:
    """The constant power that moves ``energy_wh`` in ``seconds``."""
    return energy_wh * SECONDS_PER_HOUR / seconds


def floor_current(current_a: npt.ArrayLike, step_a: float = CURRENT_STEP_A) -> FloatArray:
    """Round current limits down to the station's step; a limit rounded down never breaks a fuse."""
    return np.round(np.floor(np.asarray(current_a, dtype=np.float64) / step_a + _EPS) * step_a, 6)


def ceil_current(current_a: npt.ArrayLike, step_a: float = CURRENT_STEP_A) -> FloatArray:
    """Round current needs up to the station's step; a need rounded up is still met."""
    return np.round(np.ceil(np.asarray(current_a, dtype=np.float64) / step_a - _EPS) * step_a, 6)


@cache
def grid_phases_of(phases: int, l1_phase: int) -> tuple[int, ...]:
    """The grid phases that a load on ``phases`` phases uses when its L1 is wired to grid phase ``l1_phase``.

    Phase rotation: a station wired L1→L2, L2→L3, L3→L1 has ``l1_phase`` 2, so a single-phase EV
    on it loads grid phase 2, and a two-phase EV loads grid phases 2 and 3.
    """
    if phases not in (1, 2, 3):
        raise ValueError(f"phases must be 1, 2 or 3, not {phases}")
    if l1_phase not in GRID_PHASES:
        raise ValueError(f"l1_phase must be 1, 2 or 3, not {l1_phase}")
    return tuple((l1_phase - 1 + k) % 3 + 1 for k in range(phases))

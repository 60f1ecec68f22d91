"""Line-current limits of a three-phase network as linear rows, for the optimiser.

On a three-phase site the current in a line or a transformer winding is the magnitude of a phasor sum:
|Σ_j a_kj·e^{iθ_j}·r_j| ≤ m_k, with r_j ≥ 0 the current of station j, θ_j the phase angle of its current and
a_kj real (ACN-Sim's network model, Lee et al., IEEE Trans. Smart Grid 2021, sec. III-B; the Caltech site's
delta–wye transformer gives a_kj of ±1 on the secondary and ±1/4, ±1/2 on the primary). Such a limit is a
second-order cone, which an LP cannot hold as it is.

Two facts make an exact-where-it-matters linear form cheap:

1. Stations whose columns are equal (same a_kj·e^{iθ_j} in every row) only ever appear through their sum, so
   the LP needs one aggregate variable per *class* of stations and slot, not one row entry per EV. The
   Caltech site has five classes (three phases, two of them also in a pod).
2. As r ≥ 0, the phasor sum of row k lies in the cone spanned by its non-zero coefficients — a sector of 60°
   or 120° on the Caltech transformer, 0° for a pod on one phase. Inside that sector the disc |z| ≤ m_k is
   replaced by the inscribed polygon with vertices on the circle every δ degrees (at most ``max_step_deg``):
   each facet Re(z·e^{−iφ}) ≤ m_k·cos(δ/2) keeps z inside the disc, so a plan that meets the rows meets the
   true limit; the capacity given up is at most 1 − cos(δ/2) (0.1 % at δ = 5°). A one-direction sector
   (width 0) is a single exact row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
IntArray = npt.NDArray[np.int64]

_ZERO = 1e-12


@dataclass(frozen=True, slots=True, eq=False)
class StationClasses:
    """Stations grouped by identical columns of the phasor matrix."""

    of_station: IntArray  # class index of each station
    coefficients: ComplexArray  # (rows, classes): the common column of each class


@dataclass(frozen=True, slots=True, eq=False)
class LinearLimits:
    """``rows @ s ≤ bounds`` over the class sums ``s`` of one slot; ``source`` names the limit each row
    stands for (an index into the original rows)."""

    rows: FloatArray  # (r, classes)
    bounds: FloatArray  # (r,)
    source: IntArray  # (r,)
    classes: StationClasses


def phasor_matrix(matrix: FloatArray, angles_deg: FloatArray) -> ComplexArray:
    """a_kj·e^{iθ_j}: the contribution of one ampere at station j to the phasor of row k."""
    rotation: ComplexArray = np.exp(1j * np.deg2rad(angles_deg)).astype(np.complex128)
    return matrix * rotation[None, :]


def station_classes(phasors: ComplexArray, decimals: int = 9) -> StationClasses:
    key = np.round(np.concatenate((phasors.real, phasors.imag)).T, decimals)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return StationClasses(inverse.reshape(-1).astype(np.int64), phasors[:, first])


def _sector(directions: FloatArray) -> tuple[float, float] | None:
    """The narrowest arc [lo, lo + width] (radians) holding every direction; None if it is 180° or more
    (then the cone may be the whole plane)."""
    d = np.sort(np.mod(directions, 2 * math.pi))
    gaps = np.diff(np.r_[d, d[0] + 2 * math.pi])
    widest = int(np.argmax(gaps))
    width = 2 * math.pi - float(gaps[widest])
    if width >= math.pi - 1e-9:
        return None
    lo = float(d[(widest + 1) % d.size])
    return lo, width


def linearise(phasors: ComplexArray, limits: FloatArray, max_step_deg: float = 5.0) -> LinearLimits:
    """Inscribed-polygon rows for the limits |phasors @ r| ≤ limits over r ≥ 0 (see the module doc)."""
    classes = station_classes(phasors)
    coef = classes.coefficients
    step = math.radians(max_step_deg)
    rows: list[FloatArray] = []
    bounds: list[float] = []
    source: list[int] = []
    for k in range(coef.shape[0]):
        live = np.abs(coef[k]) > _ZERO
        if not live.any():
            continue
        sector = _sector(np.angle(coef[k, live]))
        if sector is None:
            lo, width = 0.0, 2 * math.pi
        else:
            lo, width = sector
        facets = max(1, math.ceil(width / step - 1e-9)) if width > 1e-9 else 0
        if facets == 0:
            normals = np.array([lo])
            offset = 1.0
        else:
            delta = width / facets
            normals = lo + delta * (np.arange(facets) + 0.5)
            offset = math.cos(delta / 2)
        for phi in normals:
            rows.append((coef[k] * np.exp(-1j * phi)).real)
            bounds.append(float(limits[k]) * offset)
            source.append(k)
    n_classes = coef.shape[1]
    return LinearLimits(
        np.asarray(rows, dtype=np.float64).reshape(-1, n_classes),
        np.asarray(bounds, dtype=np.float64),
        np.asarray(source, dtype=np.int64),
        classes,
    )


def line_currents(phasors: ComplexArray, rates_a: FloatArray) -> FloatArray:
    """The magnitude of every limited current for station currents ``rates_a`` (the exact check)."""
    result: FloatArray = np.abs(phasors @ rates_a)
    return result

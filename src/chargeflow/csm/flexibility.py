"""The CSM's demand profile: the connected EVs' aggregate flexibility over the next day, for the EMS.

Only P_needed and P_wished cross the CSM↔EMS interface (TF-EVC 3.2.6), as a time series of
``DemandPoint(start, needed_w, wished_w)``, each point holding until the next. The first point is the step's
P_needed and P_wished now (``csm.demand``), unchanged, for the interval of one control step. The points after
it, on the quarter hours of the next ``horizon_s``, describe two schedules of the EVs present, each EV i at
its maximum power P_i (eq. 1.1.1.1), averaged over each point's interval:

- ``needed_w(t)``: the rest of ΔE_min *as late as possible* — EV i at P_i over the last ΔE_min,i / P_i before
  its departure (from now, where that is already too late). Its integral from now to t is the least energy the
  EVs must have by t: the EMS's lower bound of the cumulative energy. The first point agrees with it: P_needed
  of ``csm.demand`` is the same schedule's power over the first step (rounded up to whole currents).
- ``wished_w(t)``: the same, plus the energy beyond ΔE_min up to ΔE_max *as soon as possible* in the power the
  first leaves: EV i at P_i from now for (ΔE_max,i − ΔE_min,i) / P_i, but not into its ΔE_min window. So
  needed_w ≤ wished_w at every point, as the contract has it, and
  * the integral of wished_w − needed_w to t is the most energy beyond ΔE_min the EVs can have by t (the
    upper envelope of that energy: no schedule delivers it sooner);
  * the integral of wished_w is the energy the EVs wish in all (ΔE_max, as far as it fits their stays);
  * an EV with ΔE_min left shows in its last slot before departure: no EV arrives in the profile, so the
    largest wished_w at or after t is never more than what the EVs present at t could take — a bound of
    the EVs' power at t.

A last point at the horizon's end, with both 0, ends the profile.

What the profile leaves out: the drivers' price caps for the energy beyond ΔE_min (the first point has them,
as ``csm.demand`` applies them at the step's price; the split keeps them each step), and how the power is
spread over stations and fuses (the split's business). Pure: ``now`` and the sessions are arguments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

from chargeflow.csm.demand import DemandTable, EvSession, FloatArray
from chargeflow.exchange import DemandPoint
from chargeflow.units import SECONDS_PER_HOUR

PROFILE_SLOT_S = 900.0
PROFILE_HORIZON_S = 24 * SECONDS_PER_HOUR


def profile_edges(now: datetime, step_s: float, slot_s: float, horizon_s: float) -> FloatArray:
    """The profile's interval edges in seconds from ``now``: 0, one step, the quarter hours (multiples of
    ``slot_s`` since the epoch) after it, and the horizon's end."""
    t0 = now.timestamp()
    first = math.ceil((t0 + step_s) / slot_s) * slot_s - t0
    quarters = np.arange(first, horizon_s, slot_s)
    edges = np.concatenate(([0.0, min(step_s, horizon_s)], quarters[quarters > step_s + 1e-6], [horizon_s]))
    return np.unique(edges)


def _energy_in(start_s: FloatArray, end_s: FloatArray, power_w: FloatArray, edges: FloatArray) -> FloatArray:
    """Per interval of ``edges``: the energy [Wh] of each EV charging at ``power_w`` from ``start_s`` to
    ``end_s``, summed over the EVs."""
    lo = np.maximum(start_s[:, None], edges[None, :-1])
    hi = np.minimum(end_s[:, None], edges[None, 1:])
    out: FloatArray = (np.maximum(hi - lo, 0.0) * power_w[:, None]).sum(axis=0) / SECONDS_PER_HOUR
    return out


def demand_profile(
    sessions: Sequence[EvSession],
    table: DemandTable,
    now: datetime,
    step_s: float,
    slot_s: float = PROFILE_SLOT_S,
    horizon_s: float = PROFILE_HORIZON_S,
) -> tuple[DemandPoint, ...]:
    """The demand as published: P_needed and P_wished now, then the profile (module doc)."""
    first = DemandPoint(now, table.needed_w, table.wished_w)
    edges = profile_edges(now, step_s, slot_s, horizon_s)
    runs = (table.max_a >= table.min_a) & (table.max_a > 0)
    power = np.where(runs, table.max_a * table.w_per_a, 0.0)
    charged = np.asarray([s.charged_wh for s in sessions], dtype=np.float64)
    needed = np.maximum(
        np.asarray([s.preferences.needed_wh for s in sessions], dtype=np.float64) - charged, 0
    )
    wished = np.maximum(
        np.asarray([s.preferences.wished_wh for s in sessions], dtype=np.float64) - charged, 0
    )
    extra = np.maximum(wished - needed, 0.0)
    stay = np.maximum(table.time_left_s, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        need_s = np.where(power > 0, needed * SECONDS_PER_HOUR / power, 0.0)
        extra_s = np.where(power > 0, extra * SECONDS_PER_HOUR / power, 0.0)
    need_from = np.maximum(stay - need_s, 0.0)  # as late as possible, from now where that is too late
    extra_until = np.minimum(extra_s, need_from)  # as soon as possible, before the ΔE_min window
    zero = np.zeros_like(stay)
    need_wh = _energy_in(need_from, stay, power, edges)
    wish_wh = need_wh + _energy_in(zero, extra_until, power, edges)
    hours = np.diff(edges) / SECONDS_PER_HOUR
    need_w, wish_w = need_wh / hours, np.maximum(wish_wh / hours, need_wh / hours)
    later = [
        DemandPoint(now + timedelta(seconds=float(s)), float(n), float(w))
        for s, n, w in zip(edges[1:-1], need_w[1:], wish_w[1:], strict=True)
    ]
    end = DemandPoint(now + timedelta(seconds=float(edges[-1])), 0.0, 0.0)
    return (first, *later, end)

"""How strongly each EV's plan should prefer now over later, from how busy its phase is.

On a three-phase site with single-phase stations the lines carry phasor sums, so a line loaded from two
phases carries less than the sum of their currents: when the transformer is the limit, the site delivers
most where every phase still has EVs that want energy. An online plan cannot see the EVs still to come;
what it can see is which phase is over-subscribed. At the Caltech garage 26 of 54 stations, and about
half of the energy asked for, are on one phase; in the congested hours of March 2019 at 20 kW nearly all
that the offline optimum delivers beyond our online plan comes from more of the lines being full at once
(docs/benchmarks-acn.md). The offline plan gets there by leaving the EVs of the quieter phases for the
congested hours, where their current mixes with the busy phase's, and charging the busy phase's EVs
whenever it can.

The hedge does the same with the planner's earliness (``ems.optimiser``): each EV's earliness is scaled by

    1 + strength·(rel − 1),   rel = energy asked for on the EV's phase / the mean over the phases

so the busy phase's EVs are charged as early as possible and the quiet phases' later within their stays
(a scale below 0 is a mild preference for later). ``rel`` comes from the sessions seen so far; before the
first one, from the number of stations per phase. Pure: the caller keeps the tally.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def phase_earliness(
    ev_phase_deg: FloatArray,
    station_phase_deg: FloatArray,
    kwh_by_phase: Mapping[float, float],
    strength: float,
) -> FloatArray:
    """Each EV's earliness as a multiple of the planner's.

    ``ev_phase_deg``: the phase angle of each EV's station; ``station_phase_deg``: every station's (the
    phases of the site, and the fallback weights); ``kwh_by_phase``: energy asked for so far per angle."""
    phases, counts = np.unique(station_phase_deg, return_counts=True)
    asked = np.asarray([kwh_by_phase.get(float(p), 0.0) for p in phases], dtype=np.float64)
    load = asked if asked.sum() > 0 else counts.astype(np.float64)
    rel_of = dict(zip(phases.tolist(), (load / load.mean()).tolist(), strict=True))
    rel = np.asarray([rel_of.get(float(p), 1.0) for p in ev_phase_deg], dtype=np.float64)
    scale: FloatArray = 1.0 + strength * (rel - 1.0)
    return scale

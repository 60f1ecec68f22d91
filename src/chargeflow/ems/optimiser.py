"""The predictive optimiser: a linear programme over a horizon of slots, solved with HiGHS.

Decision: the current r_ik [A] of EV i in block k of the horizon (a block is one or more slots). For each EV,
given the energy still to deliver E_i in ampere-slots, the slots it is there [start_i, end_i) and its
largest current R_i:

    maximise   Σ_ik n_ik·w_ik·r_ik                                    (energy, earlier preferred)
    subject to Σ_k n_ik·r_ik ≤ E_i                                    (no more than asked)
               0 ≤ r_ik ≤ R_i
               s_ck = Σ_{i in class c} r_ik                           (station classes, ``ems.phasor``)
               G·s_k ≤ h   for every block k                          (every line and fuse limit)

with n_ik the number of slots of block k that EV i is there. A block's rate counts against the limits for
the whole block even when the EV leaves within it, which keeps the coarse far end of a rolling horizon on
the safe side; the near end is one block per slot and exact.

The weights w_ik = 1 − ε·(t_k − start_i)/T_day make the objective lexicographic in effect: delivered energy
first, then as early as possible. Energy is worth at least 1 − ε per unit against an earliness gain of at most
ε, so with ε = 1e-3 the optimum gives up less than 0.1 % of the deliverable energy for earliness. Earlier
charging is what an online plan needs: EVs that arrive later are unknown now, and capacity left free then
is theirs. This is the objective of the model-predictive scheduler of Lee et al. (ACN-Sim, IEEE Trans. Smart
Grid 2021, "quick charge" with total energy), in linear form.

Pure: no I/O and no clock; the HiGHS instance is the only state, kept by ``Planner`` so that successive
solves reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt

from chargeflow.ems.phasor import LinearLimits

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EARLINESS = 1e-3


@dataclass(frozen=True, slots=True, eq=False)
class ChargeRequest:
    """The EVs to plan for, as arrays indexed like the EVs; times in slots from the plan's start."""

    station: IntArray  # index of each EV's station (columns of the network)
    energy_a_slots: FloatArray  # E_i, energy still wanted, in ampere-slots
    start_slot: IntArray
    end_slot: IntArray  # exclusive: the slot of departure
    max_a: FloatArray  # R_i
    #: least current of each EV in the first block (its need now); None: 0
    first_min_a: FloatArray | None = None

    def __len__(self) -> int:
        return int(self.station.size)


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    boundaries: IntArray  # block k covers slots [boundaries[k], boundaries[k+1])
    rates_a: FloatArray  # (EVs, blocks)
    status: str
    ok: bool

    @property
    def first_a(self) -> FloatArray:
        """The plan's first slot: what the stations get now."""
        if self.rates_a.shape[1] == 0:
            return np.zeros(self.rates_a.shape[0])
        first: FloatArray = self.rates_a[:, 0]
        return first

    def slot_rates_a(self) -> FloatArray:
        """The plan slot by slot (blocks expanded)."""
        widths = np.diff(self.boundaries)
        expanded: FloatArray = np.repeat(self.rates_a, widths, axis=1)
        return expanded


def rolling_boundaries(
    n_slots: int, fine: int = 12, mid: tuple[int, int] = (3, 48), far: int = 6
) -> IntArray:
    """Block boundaries of a rolling horizon: one slot per block for the first ``fine`` slots (the first is
    what gets applied, the next ones are re-planned soon), then blocks of ``mid[0]`` slots up to slot
    ``mid[1]``, then blocks of ``far`` slots. With 5-minute slots: 5 min for an hour, 15 min up to 4 h, then
    30 min — 64 blocks for a day instead of 288."""
    edges = [*range(0, min(fine, n_slots))]
    t = len(edges)
    while t < n_slots:
        edges.append(t)
        t += mid[0] if t < mid[1] else far
    edges.append(n_slots)
    return np.asarray(edges, dtype=np.int64)


def _csc(
    rows: IntArray, cols: IntArray, vals: FloatArray, n_cols: int
) -> tuple[IntArray, IntArray, FloatArray]:
    order = np.lexsort((rows, cols))
    starts = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=n_cols), out=starts[1:])
    return starts, rows[order], vals[order]


class Planner:
    """Builds and solves the LP; keeps one HiGHS instance across solves (a new model per solve, as the EVs
    change from one step to the next).

    ``deadline_order`` > 0 adds to each EV's earliness a slope of ``deadline_order``·ε over its own stay, so
    that among plans of equal energy the EV leaving first is served first (EDF as a tie-break). Off by
    default: it moved a March week at 20 kW by 0.1 point (docs/benchmarks-acn.md)."""

    def __init__(
        self,
        slots_per_day: float,
        earliness: float = EARLINESS,
        time_limit_s: float = 5.0,
        deadline_order: float = 0.0,
    ) -> None:
        self._earliness_per_slot = earliness / slots_per_day
        self._earliness = earliness
        self._deadline_order = deadline_order
        self._highs = highspy.Highs()  # type: ignore[no-untyped-call]
        self._highs.setOptionValue("output_flag", False)
        self._time_limit_s = time_limit_s
        self._highs.setOptionValue("threads", 1)

    def solve(self, limits: LinearLimits, request: ChargeRequest, boundaries: IntArray) -> Plan:
        n = len(request)
        n_blocks = boundaries.size - 1
        if n == 0 or n_blocks <= 0:
            return Plan(boundaries, np.zeros((n, max(n_blocks, 0))), "empty", True)
        lo = boundaries[:-1]
        hi = boundaries[1:]
        avail = np.clip(
            np.minimum(request.end_slot[:, None], hi[None, :])
            - np.maximum(request.start_slot[:, None], lo[None, :]),
            0,
            None,
        ).astype(np.float64)
        live = (avail > 0) & (request.max_a[:, None] > 0) & (request.energy_a_slots[:, None] > 1e-9)
        ev, blk = np.nonzero(live)
        p = ev.size
        if p == 0:
            return Plan(boundaries, np.zeros((n, n_blocks)), "nothing to deliver", True)
        n_ik = avail[ev, blk]
        mid = 0.5 * (lo[blk] + hi[blk])
        since = mid - request.start_slot[ev]
        weight = 1.0 - self._earliness_per_slot * since
        if self._deadline_order:
            stay = np.maximum(request.end_slot[ev] - request.start_slot[ev], 1)
            weight -= self._deadline_order * self._earliness * since / stay

        cls = limits.classes.of_station[request.station[ev]]
        n_classes = limits.rows.shape[1]
        cb_key = blk * n_classes + cls
        cb, q_of_p = np.unique(cb_key, return_inverse=True)
        q = cb.size
        cb_blk, cb_cls = cb // n_classes, cb % n_classes

        # Network rows: one per (limit row, block) with a class present in the block.
        g = limits.rows[:, cb_cls]  # (r, q)
        r_idx, q_idx = np.nonzero(np.abs(g) > 1e-12)
        row_key = cb_blk[q_idx] * limits.rows.shape[0] + r_idx
        net_rows, net_of_entry = np.unique(row_key, return_inverse=True)

        n_cols = p + q
        energy_rows = ev
        class_rows = n + q_of_p
        net_base = n + q
        rows = np.concatenate((energy_rows, class_rows, n + np.arange(q), net_base + net_of_entry))
        cols = np.concatenate((np.arange(p), np.arange(p), p + np.arange(q), p + q_idx))
        vals = np.concatenate((n_ik, -np.ones(p), np.ones(q), g[r_idx, q_idx]))
        starts, index, value = _csc(rows.astype(np.int64), cols.astype(np.int64), vals, n_cols)

        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_ = n_cols
        lp.num_row_ = net_base + net_rows.size
        lp.col_cost_ = np.concatenate((-n_ik * weight, np.zeros(q)))
        lower = np.zeros(n_cols)
        if request.first_min_a is not None:
            first = blk == 0
            lower[:p][first] = np.minimum(request.first_min_a[ev[first]], request.max_a[ev[first]])
        lp.col_lower_ = lower
        lp.col_upper_ = np.concatenate((request.max_a[ev], np.full(q, inf)))
        lp.row_lower_ = np.concatenate((np.full(n, -inf), np.zeros(q), np.full(net_rows.size, -inf)))
        lp.row_upper_ = np.concatenate(
            (request.energy_a_slots, np.zeros(q), limits.bounds[net_rows % limits.rows.shape[0]])
        )
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = starts
        lp.a_matrix_.index_ = index
        lp.a_matrix_.value_ = value
        h = self._highs
        h.clearModel()
        h.passModel(lp)
        # HiGHS checks ``time_limit`` against its instance's run time summed over every solve, not this one's.
        h.setOptionValue("time_limit", h.getRunTime() + self._time_limit_s)
        h.run()
        status = h.modelStatusToString(h.getModelStatus())
        rates = np.zeros((n, n_blocks))
        ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        if ok:
            x = np.asarray(h.getSolution().col_value[:p])
            rates[ev, blk] = np.clip(x, 0.0, request.max_a[ev])
        return Plan(boundaries, rates, status, ok)

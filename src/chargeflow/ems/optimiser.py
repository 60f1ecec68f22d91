"""The predictive optimiser: a linear programme over a horizon of slots, solved with HiGHS.

Decision: the current r_ik [A] of EV i in block k of the horizon (a block is one or more slots). For each EV,
given the energy still to deliver E_i in ampere-slots, the slots it is there [start_i, end_i) and its
largest current R_i:

    maximise   Σ_ik n_ik·w_ik·r_ik                                    (energy, earlier preferred)
    subject to Σ_k n_ik·r_ik ≤ E_i                                    (no more than asked)
               0 ≤ r_ik ≤ R_i
               s_ck = Σ_{i in class c} r_ik                           (station classes, ``ems.phasor``)
               G·s_k ≤ h   for every block k                          (every line and fuse limit)

with n_ik the number of slots of block k that EV i is there. Where a class has only a few rows (a feeder
chain's phases and the grant, as in the control step) the class sums are substituted and each rate enters
those rows itself: the LP then has half the rows, which is what a warm start's primal simplex pays for.

A block's rate counts against the limits for the whole block even when the EV leaves within it, which
keeps the coarse far end of a rolling horizon on the safe side; the near end is one block per slot and
exact.

The weights w_ik = 1 − ε_i·(t_k − start_i)/T_day (ε_i = ε unless the request scales it per EV) make the
objective lexicographic in effect: delivered energy first, then as early as possible. Energy is worth at
least 1 − ε per unit against an earliness gain of at most ε, so with ε = 1e-3 the optimum gives up less
than 0.1 % of the deliverable energy for earliness. Earlier charging is what an online plan needs: EVs
that arrive later are unknown now, and capacity left free then is theirs. This is the objective of the
model-predictive scheduler of Lee et al. (ACN-Sim, IEEE Trans. Smart Grid 2021, "quick charge" with total
energy), in linear form.

Warm start: a rolling plan re-solves almost the same LP every step (the same EVs, one slot later, a little
less energy to go). Given stable keys for the EVs and the absolute slot of the plan's start, ``Planner``
keeps its last plan by what each rate stands for (an EV in the block that covers an absolute slot) and
gives HiGHS the rest of it as the starting solution of the next solve (``Highs.setSolution``), each EV's
rates scaled down where it now wants less than they deliver; HiGHS builds its starting basis from that
solution instead of presolving and crashing one from scratch. With ``rolling_boundaries(origin_slot=…)``
the coarse blocks stay where they were in absolute time, so the rest of the last plan fits the new blocks.
``sim.bench_mpc`` times cold and warm solves on the same steps.

Pure: no I/O and no clock; the HiGHS instance and the last plan are the only state, kept by ``Planner``.
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
#: a rate enters the network rows of its class directly when its class has at most this many rows on
#: average (a feeder chain's phases and the grant), through one class sum per block otherwise
DIRECT_ROWS = 16

_KEY_SHIFT = np.int64(1) << np.int64(32)
_DUAL, _PRIMAL = 1, 4  # HiGHS's simplex_strategy


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
    #: each EV's earliness as a multiple of the planner's; None: 1
    earliness_scale: FloatArray | None = None

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
    n_slots: int, fine: int = 12, mid: tuple[int, int] = (3, 48), far: int = 6, origin_slot: int = 0
) -> IntArray:
    """Block boundaries of a rolling horizon: one slot per block for the first ``fine`` slots (the first is
    what gets applied, the next ones are re-planned soon), then blocks of ``mid[0]`` slots up to slot
    ``mid[1]``, then blocks of ``far`` slots. With 5-minute slots: 5 min for an hour, 15 min up to 4 h, then
    30 min — 64 blocks for a day instead of 288.

    The coarse blocks start at absolute slots (``origin_slot`` + t) that are multiples of their width, so
    that the next step's blocks are this step's blocks one slot on, apart from where the fine part ends:
    the plan of one step is then almost the next one's, which is what lets a warm start pay."""
    edges = [*range(0, min(fine, n_slots))]
    t = len(edges)
    while t < n_slots:
        edges.append(t)
        width = mid[0] if t < mid[1] else far
        t += width - (origin_slot + t) % width
    edges.append(n_slots)
    return np.asarray(edges, dtype=np.int64)


def _csc(
    rows: IntArray, cols: IntArray, vals: FloatArray, n_cols: int
) -> tuple[IntArray, IntArray, FloatArray]:
    order = np.lexsort((rows, cols))
    starts = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(np.bincount(cols, minlength=n_cols), out=starts[1:])
    return starts, rows[order], vals[order]


@dataclass(frozen=True, slots=True, eq=False)
class _Last:
    """The last optimal plan: each EV rate under the key (EV, absolute slot of its block's start), sorted."""

    abs_bounds: IntArray  # its blocks' boundaries, in absolute slots
    keys: IntArray
    rates_a: FloatArray


def _rate_keys(ev_keys: IntArray, block: IntArray) -> IntArray:
    """One integer per (EV, block); a block of -1 (none) gives a key that no kept one has."""
    key: IntArray = np.where(block >= 0, ev_keys * _KEY_SHIFT + block, -1)
    return key


class Planner:
    """Builds and solves the LP; keeps one HiGHS instance across solves (a new model per solve, as the EVs
    change from one step to the next).

    ``warm`` keeps the basis of each optimum for the next solve of the same EVs (see the module doc); it
    needs the EVs' keys and the plan's absolute start slot, passed to ``solve``.

    ``deadline_order`` > 0 adds to each EV's earliness a slope of ``deadline_order``·ε over its own stay, so
    that among plans of equal energy the EV leaving first is served first (EDF as a tie-break). Off by
    default: it moved a March week at 20 kW by 0.1 point (docs/benchmarks-acn.md).

    ``size_order`` > 0 lowers each EV's weight by ``size_order``·ε times the days at its largest current it
    still needs, so that among plans of (nearly) equal energy the EV with least left to charge is served
    first: more sessions end complete, and the EVs that stay unfinished are the large ones, which can
    still take any current left free later. With ideal batteries (the Caltech sessions of May 2019 at 20
    kW) it raised the sessions met in full from 63 to 82 % at the same energy; with tapering ones it costs
    energy, so it is off by default (docs/benchmarks-acn.md).

    ``ChargeRequest.earliness_scale`` scales ε per EV (``ems.phase_hedge``)."""

    def __init__(
        self,
        slots_per_day: float,
        earliness: float = EARLINESS,
        time_limit_s: float = 5.0,
        deadline_order: float = 0.0,
        warm: bool = True,
        size_order: float = 0.0,
    ) -> None:
        self._earliness_per_slot = earliness / slots_per_day
        self._earliness = earliness
        self._deadline_order = deadline_order
        self._size_order = size_order
        self._slots_per_day = slots_per_day
        self._highs = highspy.Highs()  # type: ignore[no-untyped-call]
        self._highs.setOptionValue("output_flag", False)
        self._time_limit_s = time_limit_s
        self._highs.setOptionValue("threads", 1)
        self._warm = warm
        self._last: _Last | None = None
        #: solves that started from the rest of the previous plan
        self.warm_starts = 0
        #: simplex iterations of the last solve
        self.iterations = 0

    def solve(
        self,
        limits: LinearLimits,
        request: ChargeRequest,
        boundaries: IntArray,
        keys: IntArray | None = None,
        origin_slot: int = 0,
    ) -> Plan:
        """The optimal plan; ``keys`` (one stable non-negative integer per EV, below 2³¹) and
        ``origin_slot`` (the absolute slot of slot 0) let it start from the last solve's basis."""
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
        scale = 1.0 if request.earliness_scale is None else request.earliness_scale[ev]
        weight = 1.0 - self._earliness_per_slot * since * scale
        if self._deadline_order:
            stay = np.maximum(request.end_slot[ev] - request.start_slot[ev], 1)
            weight -= self._deadline_order * self._earliness * since / stay
        if self._size_order:
            days_at_max = request.energy_a_slots / np.maximum(request.max_a, 1e-9) / self._slots_per_day
            weight -= self._size_order * self._earliness * days_at_max[ev]

        cls = limits.classes.of_station[request.station[ev]]
        n_rows = limits.rows.shape[0]
        nonzero = np.abs(limits.rows) > 1e-12  # (r, classes)
        per_class = nonzero.sum(axis=0)
        n_classes = limits.rows.shape[1]
        cb_key = blk * n_classes + cls
        cb, q_of_p = np.unique(cb_key, return_inverse=True)
        cb_blk, cb_cls = cb // n_classes, cb % n_classes
        # Two forms of the same LP. ``direct``: each rate in every network row of its class — where a
        # class has a few rows (a feeder chain's phases and the grant), as in the control step. Otherwise
        # each rate in one class-sum row and the class sum s_ck in the network rows — where a class has
        # dozens of rows (the polygons of a phasor site, ``ems.phasor``). On 1,000 EVs the direct form
        # has half the rows; its warm solves then take 600-1,100 primal iterations against 800-2,600, each
        # cheaper (docs/benchmarks-acn.md); on Caltech's polygons it would carry ~100 entries per rate.
        direct = float(per_class[cls].mean()) <= DIRECT_ROWS
        q = 0 if direct else cb.size
        g = limits.rows[:, cb_cls]  # (r, classes present per block)
        r_idx, q_idx = np.nonzero(np.abs(g) > 1e-12)
        row_key = cb_blk[q_idx] * n_rows + r_idx
        net_rows, net_of_entry = np.unique(row_key, return_inverse=True)
        net_base = n + q
        if direct:
            # Every rate into the rows of its (block, class): CSR-like expansion of q_of_p over q_idx.
            order = np.argsort(q_idx, kind="stable")
            counts = np.bincount(q_idx, minlength=cb.size)
            first = np.zeros(cb.size + 1, dtype=np.int64)
            np.cumsum(counts, out=first[1:])
            reps = counts[q_of_p]
            col_of = np.repeat(np.arange(p), reps)
            within = np.arange(col_of.size) - np.repeat(np.cumsum(reps) - reps, reps)
            entry = order[first[q_of_p][col_of] + within]
            n_cols = p
            rows = np.concatenate((ev, net_base + net_of_entry[entry]))
            cols = np.concatenate((np.arange(p), col_of))
            vals = np.concatenate((n_ik, g[r_idx[entry], q_idx[entry]]))
        else:
            n_cols = p + q
            class_rows = n + q_of_p
            rows = np.concatenate((ev, class_rows, n + np.arange(q), net_base + net_of_entry))
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
        ev_keys = keys[ev] if self._warm and keys is not None else None
        started_warm = False
        if ev_keys is not None and self._last is not None:
            start = self._start(ev_keys, blk, boundaries + origin_slot, n_ik, request, lower[:p], ev)
            solution = highspy.HighsSolution()
            sums = np.bincount(q_of_p, weights=start, minlength=q) if q else np.zeros(0)
            solution.col_value = np.concatenate((start, sums))
            solution.value_valid = True
            started_warm = h.setSolution(solution) == highspy.HighsStatus.kOk
            self.warm_starts += started_warm
        # From the rest of the last plan, the primal simplex: that start is feasible when the EVs got what
        # the plan gave them (nearly so otherwise), so few pivots remain — 14 to 200 instead of 1,846 on 300
        # EVs with a moving horizon (tests/unit/test_optimiser_warm.py); the dual simplex from the same start
        # took 1,200 to 1,500. On 1,000 EVs it pays only in the direct form (half the rows, see above):
        # with class-sum rows a warm solve was slower than a cold one (docs/benchmarks-acn.md).
        h.setOptionValue("simplex_strategy", _PRIMAL if started_warm else _DUAL)
        # HiGHS checks ``time_limit`` against its instance's run time summed over every solve, not this one's.
        h.setOptionValue("time_limit", h.getRunTime() + self._time_limit_s)
        h.run()
        self.iterations = int(h.getInfo().simplex_iteration_count)
        status = h.modelStatusToString(h.getModelStatus())
        rates = np.zeros((n, n_blocks))
        ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        if ok:
            x = np.asarray(h.getSolution().col_value[:p])
            rates[ev, blk] = np.clip(x, 0.0, request.max_a[ev])
            if ev_keys is not None:
                order = np.argsort(_rate_keys(ev_keys, blk), kind="stable")
                self._last = _Last(boundaries + origin_slot, _rate_keys(ev_keys, blk)[order], x[order])
        else:
            self._last = None
        return Plan(boundaries, rates, status, ok)

    def _start(
        self,
        ev_keys: IntArray,
        blk: IntArray,
        abs_bounds: IntArray,
        n_ik: FloatArray,
        request: ChargeRequest,
        lower: FloatArray,
        ev: IntArray,
    ) -> FloatArray:
        """The rest of the last plan on this solve's columns: each rate that of the same EV in the last
        block holding this block's first slot, within the bounds, and each EV's rates scaled to the energy
        it still wants."""
        last = self._last
        assert last is not None
        k = np.searchsorted(last.abs_bounds, abs_bounds[blk], side="right") - 1
        k = np.where((k >= 0) & (k < last.abs_bounds.size - 1), k, -1)
        wanted = _rate_keys(ev_keys, k)
        at = np.minimum(np.searchsorted(last.keys, wanted), max(last.keys.size - 1, 0))
        rates = np.where(last.keys[at] == wanted, last.rates_a[at], 0.0) if last.keys.size else lower * 0
        rates = np.clip(rates, lower, request.max_a[ev])
        delivered = np.bincount(ev, weights=n_ik * rates, minlength=len(request))
        scale = np.minimum(1.0, request.energy_a_slots / np.maximum(delivered, 1e-12))
        start: FloatArray = np.maximum(rates * scale[ev], lower)
        return start

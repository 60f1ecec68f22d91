"""Split P_granted into per-station current limits (TF-EVC SmCh, ChPo eq. 1.1.1.1, PoFl eq. 3.2.5.1).

Every station ends at 0 A or between its minimum current and min(station maximum, EV maximum); the EVs'
currents, with the other loads on each circuit, keep every phase of every circuit within its fuse, and their
power adds up to no more than P_granted. Each limit carries the reason it is not higher.

Two passes, the same for every strategy:

1. **Needs.** In the strategy's order each EV gets its need (``csm.demand``), as far as the fuses and the
   grant allow. If all the needs fit together, every EV gets its need, whatever the order: the limits are
   upper bounds on sums, so granting a subset of a fitting set always fits.
2. **Surplus.** ``edf``, ``llf`` and ``priority`` fill each EV up to its wish in their order (earliest
   departure, least laxity, highest priority). ``equal`` (aliquot) first starts as many waiting EVs at
   their minimum current as fit, then raises all running EVs to a common level (water-filling): when a fuse
   phase or the grant runs out, the EVs under it stay at that level and the others rise on.

The water-filling is exact, not a search: on each round the largest level each constraint allows is read
off its piecewise-linear load curve, so a round costs one sort of the constraint entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from chargeflow.csm.demand import DemandTable
from chargeflow.site.tree import CircuitTree
from chargeflow.units import floor_current

_TOL = 1e-9


class Strategy(StrEnum):
    EQUAL = "equal"
    EDF = "edf"
    LLF = "llf"
    PRIORITY = "priority"


class Limit(NamedTuple):
    """A station's current limit and why it is not higher: the EV's wish reason (``ev_max``,
    ``price_cap`` …), a fuse (``fuse:<circuit>:L<phase>``), or the spent grant, which carries the EMS's
    reason for granting no more (``grid_import_limit`` …). An EV at 0 A names what kept it from its
    minimum current."""

    id: str
    current_a: float
    power_w: float
    reason: str
    need_met: bool


@dataclass(frozen=True, slots=True)
class SplitResult:
    limits: tuple[Limit, ...]
    power_w: float
    needs_met: bool
    #: fuse headroom per constraint (``site.tree.constraint_index``) left after the EVs, in A
    headroom_a: tuple[float, ...]


def strategy_order(evs: DemandTable, strategy: Strategy) -> list[int]:
    """The order in which a strategy serves the EVs; ties keep the input order.

    ``edf``: EVs still short of ΔE_min first, then by departure. ``llf``, and the order in which ``equal``
    serves needs and starts waiting EVs: least laxity first. ``priority``: highest priority first.
    """
    short = ~evs.needs_energy
    index = np.arange(len(evs))
    keys: tuple[npt.NDArray[Any], ...]
    if strategy is Strategy.EDF:
        keys = (index, evs.laxity_s, evs.time_left_s, short)
    elif strategy is Strategy.PRIORITY:
        keys = (index, evs.time_left_s, short, -evs.priority)
    else:
        keys = (index, evs.time_left_s, evs.laxity_s, short)
    order: list[int] = np.lexsort(keys).tolist()
    return order


class _Allocation:
    """Mutable working state of one split: currents, reasons, fuse headroom and the rest of the grant."""

    def __init__(
        self,
        evs: DemandTable,
        tree: CircuitTree,
        other_loads_a: Sequence[float],
        granted_w: float,
        granted_reason: str,
    ) -> None:
        self.tree = tree
        self.w_per_a: list[float] = evs.w_per_a.tolist()
        self.min_a: list[float] = evs.min_a.tolist()
        self.head = [f - load for f, load in zip(tree.fuse_limits(), other_loads_a, strict=True)]
        self.budget_w = max(granted_w, 0.0)
        self.granted_reason = granted_reason
        self.cons = [tree.constraints_of(c, p) for c, p in zip(evs.circuits, evs.grid_phases, strict=True)]
        self.cur = [0.0] * len(evs)
        self.reason = [r.value for r in map(evs.reason, range(len(evs)))]

    def raise_to(self, i: int, target_a: float) -> None:
        """Raise EV ``i`` towards ``target_a`` as far as the fuses and the grant allow; an EV not yet
        running must reach its minimum current or stay at 0, and its reason names what kept it there."""
        want = target_a - self.cur[i]
        if want <= _TOL:
            return
        head = self.head
        w = self.w_per_a[i]
        room = self.budget_w / w
        binding = -1
        for k in self.cons[i]:
            if head[k] < room:
                room = head[k]
                binding = k
        amount = min(want, room)
        if amount < want - _TOL:
            self.reason[i] = self.granted_reason if binding < 0 else self.tree.constraint_name(binding)
        if amount <= _TOL or (self.cur[i] == 0.0 and amount < self.min_a[i] - _TOL):
            return
        self.cur[i] += amount
        self.budget_w -= amount * w
        for k in self.cons[i]:
            head[k] -= amount


def split(
    evs: DemandTable,
    tree: CircuitTree,
    other_loads_a: Sequence[float],
    granted_w: float,
    strategy: Strategy,
    granted_reason: str = "granted",
) -> SplitResult:
    """Per-station current limits for one step.

    ``other_loads_a`` is the present load of everything but the EVs, per fuse constraint, in A.
    """
    alloc = _Allocation(evs, tree, other_loads_a, granted_w, granted_reason)
    order = strategy_order(evs, strategy)
    need: list[float] = evs.need_a.tolist()
    wish: list[float] = evs.wish_a.tolist()

    for i in order:
        if need[i] > 0:
            alloc.raise_to(i, need[i])

    if strategy is Strategy.EQUAL:
        active = []
        for i in order:
            if alloc.cur[i] == 0.0 and wish[i] > 0:
                alloc.raise_to(i, alloc.min_a[i])
            if alloc.cur[i] > 0 or (alloc.min_a[i] == 0 and wish[i] > 0):
                active.append(i)
        _water_fill(alloc, active, wish)
    else:
        for i in order:
            alloc.raise_to(i, wish[i])

    floored = floor_current(alloc.cur)
    current = np.where(floored < evs.min_a - _TOL, 0.0, floored)
    power = current * evs.w_per_a
    met = current >= evs.need_a - _TOL
    limits = tuple(map(Limit, evs.ids, current.tolist(), power.tolist(), alloc.reason, met.tolist()))
    headroom = alloc.head
    for i, cut in enumerate((np.asarray(alloc.cur) - current).tolist()):
        if cut > 0:  # give back what rounding down took off
            for k in alloc.cons[i]:
                headroom[k] += cut
    return SplitResult(limits, float(power.sum()), bool(met.all()), tuple(headroom))


def _water_fill(alloc: _Allocation, active: Sequence[int], wish_a: Sequence[float]) -> None:
    """Raise the ``active`` EVs to a common current level, as far as fuses and the grant allow (max-min fair).

    Each round: for every constraint k (fuse phases, and the grant as constraint ``n``), the load it sees as
    a function of the level L is u_k(L) = Σ coef·(clip(L, cur_i, wish_i) − cur_i) over its free EVs, a
    nondecreasing piecewise-linear curve with breakpoints at the EVs' cur and wish. The largest L with
    u_k(L) ≤ headroom_k is read off the curve; the smallest such L over all constraints is this round's
    level. The EVs of the binding constraint(s) stop there, and the rest go on in the next round.
    """
    free = [i for i in active if alloc.cur[i] < wish_a[i] - _TOL]
    if not free:
        return
    n_cons = len(alloc.head)
    budget_k = n_cons
    pos = {i: p for p, i in enumerate(free)}
    ent_k: list[int] = []
    ent_p: list[int] = []
    ent_c: list[float] = []
    for i in free:
        p = pos[i]
        for k in alloc.cons[i]:
            ent_k.append(k)
            ent_p.append(p)
            ent_c.append(1.0)
        ent_k.append(budget_k)
        ent_p.append(p)
        ent_c.append(alloc.w_per_a[i])
    k_all = np.asarray(ent_k, dtype=np.int64)
    p_all = np.asarray(ent_p, dtype=np.int64)
    c_all = np.asarray(ent_c)
    cur0 = cur = np.asarray([alloc.cur[i] for i in free])
    wish = np.asarray([wish_a[i] for i in free])
    head = np.maximum(np.asarray([*alloc.head, alloc.budget_w]), 0.0)
    is_free = np.ones(len(free), dtype=bool)
    reason: dict[int, str] = {}

    while True:
        live = is_free[p_all]
        if not live.any():
            break
        level, binding = _round_level(k_all[live], p_all[live], c_all[live], cur, wish, head)
        new = np.clip(level, cur, wish) if np.isfinite(level) else wish.copy()
        new = np.where(is_free, new, cur)
        head -= np.bincount(k_all, weights=(new - cur)[p_all] * c_all, minlength=n_cons + 1)
        np.maximum(head, 0.0, out=head)
        cur = new
        done = is_free & (cur >= wish - _TOL)
        if binding.size:
            hit = np.zeros(n_cons + 1, dtype=bool)
            hit[binding] = True
            in_binding = np.zeros(len(free), dtype=bool)
            in_binding[p_all[live & hit[k_all]]] = True
            stopped = is_free & in_binding & ~done
            # Name the first saturated constraint of each stopped EV, its own circuit's fuse before its
            # ancestors' and before the grant: an EV already stopped by its own fuse says so, even when
            # the grant ran out in the same round.
            saturated = hit | (head <= 1e-7)
            named = live & stopped[p_all] & saturated[k_all]
            qs, first = np.unique(p_all[named], return_index=True)
            for q, b in zip(qs.tolist(), k_all[named][first].tolist(), strict=True):
                reason[q] = alloc.granted_reason if b == budget_k else alloc.tree.constraint_name(b)
            is_free &= ~in_binding
        is_free &= ~done
        if not np.isfinite(level):
            break

    added = np.bincount(k_all, weights=(cur - cur0)[p_all] * c_all, minlength=n_cons + 1)
    for k, a in enumerate(added[:n_cons].tolist()):
        alloc.head[k] -= a
    alloc.budget_w -= float(added[budget_k])
    for p, i in enumerate(free):
        alloc.cur[i] = float(cur[p])
        if p in reason:
            alloc.reason[i] = reason[p]


def _round_level(
    k: np.ndarray, p: np.ndarray, c: np.ndarray, cur: np.ndarray, wish: np.ndarray, head: np.ndarray
) -> tuple[float, np.ndarray]:
    """The highest common level the free EVs can rise to, and the constraints that bind there."""
    ev_k = np.concatenate((k, k))
    ev_v = np.concatenate((cur[p], wish[p]))
    ev_d = np.concatenate((c, -c))
    order = np.lexsort((ev_v, ev_k))
    ks, vs, ds = ev_k[order], ev_v[order], ev_d[order]
    n = ks.size
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    seg = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, n]))
    cs = np.cumsum(ds)
    slope = cs - (cs[starts] - ds[starts])[seg]  # load slope just after each breakpoint
    ends = np.r_[starts[1:] - 1, n - 1]
    nxt = np.r_[vs[1:], vs[-1]]
    nxt[ends] = vs[ends]
    inc = slope * (nxt - vs)
    ci = np.cumsum(inc)
    u_next = ci - (ci[starts] - inc[starts])[seg]  # load when the level reaches the next breakpoint
    u_at = u_next - inc
    limit = head[ks]
    over = np.flatnonzero(u_next > limit + 1e-7)
    if over.size == 0:
        return float("inf"), np.empty(0, dtype=np.int64)
    _, first_idx = np.unique(ks[over], return_index=True)
    first = over[first_idx]
    levels = vs[first] + (limit[first] - u_at[first]) / np.maximum(slope[first], 1e-12)
    level = float(levels.min())
    return level, ks[first][levels <= level + 1e-7]

"""The site's plan over a horizon: EVs, the ESS, PV and the building against prices and the grid limit.

Where ``ems.optimiser`` plans EV currents against every line and fuse for the energy alone, this LP plans
the site's powers slot by slot for its cost (TF-EVC sec. 3.2.6: P_needed ≤ P_granted ≤ P_wished, the ESS
covering what the grid cannot, eq. 3.2.6.3–4), with forecasts of PV generation and building load and an
energy price per slot. Variables per slot t of ``dt_h`` hours, powers in W:

    x_it, y_it ≥ 0    EV i's power towards ΔE_min (x) and beyond it up to ΔE_max (y), 0 outside its stay
    c_t, d_t ≥ 0      ESS charge and discharge;  s_t its stored energy [Wh] at the end of slot t
    m_t, e_t ≥ 0      grid import and export;  p ≥ m_t the peak import;  u_t ≥ |m_t − m_{t−1}|

    m_t − e_t = building_t − pv_t + Σ_i (x_it + y_it) + c_t − d_t           (balance at the grid access)
    x_it + y_it ≤ P_i,  m_t ≤ P_import,  e_t ≤ P_export,  c_t ≤ P_c,  d_t ≤ P_d
    s_t = s_{t−1} + η·c_t·dt − d_t·dt/η,  E_min ≤ s_t ≤ E_cap                 (ESS dynamics)
    Σ_t x_it·dt + short_i ≥ ΔE_min,i,  Σ_t x_it·dt ≤ ΔE_min,i,  Σ_t y_it·dt ≤ ΔE_max,i − ΔE_min,i
    y_it = 0 where price_t > the driver's cap for the energy beyond ΔE_min

    minimise  W_need·Σ short_i − W_wish·Σ y_it·dt                  (ΔE_min by departure first, then ΔE_max)
              + early·Σ_it t·x_it·dt                               (optionally: ΔE_min as soon as it can be)
              + Σ_t (price_t·m_t − feed_in_t·e_t)·dt               (then the energy bill)
              + wear·Σ_t (c_t + d_t)·dt − end_value·s_{T−1}        (the ESS's wear, what it holds at the end)
              + peak_price·p + smooth·Σ u_t                        (then the peak import, then smoothness)

The weights make it lexicographic in effect: a Wh short of ΔE_min costs ``W_need`` (1,000 per Wh), a Wh
of wish is worth ``W_wish`` (1 per Wh), both far above any price per Wh (0.0001–0.001), so the bill never
buys a shortfall and the wish is bought wherever its cap allows. PV self-consumption follows from the bill:
a Wh exported earns ``feed_in`` (≤ the price) where storing or charging it saves the price later.

Pure: numbers in, plan out; HiGHS is the only state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import highspy
import numpy as np
import numpy.typing as npt

from chargeflow.ems.balance import ess_charge_limit_w, ess_discharge_limit_w
from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import Ess, GridConnection
from chargeflow.units import SECONDS_PER_HOUR

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

W_NEED = 1000.0  # per Wh short of ΔE_min
W_WISH = 1.0  # per Wh beyond ΔE_min, up to ΔE_max
_TOL_W = 1e-6


@dataclass(frozen=True, slots=True, eq=False)
class EvNeeds:
    """The EVs, as arrays indexed like the EVs; slots counted from the plan's start."""

    max_w: FloatArray
    needed_wh: FloatArray  # ΔE_min still to charge
    wished_wh: FloatArray  # ΔE_max still to charge (≥ needed_wh)
    start_slot: IntArray
    end_slot: IntArray  # exclusive: the slot of departure
    #: price per Wh above which no energy beyond ΔE_min is bought; None: no cap
    wish_cap_per_wh: FloatArray | None = None


@dataclass(frozen=True, slots=True)
class Storage:
    """The ESS: its energy now and its bounds [Wh], power limits [W], one-way efficiency."""

    stored_wh: float
    min_wh: float
    capacity_wh: float
    max_charge_w: float
    max_discharge_w: float
    efficiency: float = 0.95
    #: what a Wh still stored at the horizon's end is worth: without it the plan would empty the ESS by
    #: the end of every horizon, as if the world ended there
    end_value_per_wh: float = 0.0
    #: the wear of a Wh charged or discharged. Its default (0.001 per kWh) is small beside prices but above
    #: the solver's tolerance: a lossless battery is otherwise free to charge and discharge in one slot
    cycle_cost_per_wh: float = 1e-6


@dataclass(frozen=True, slots=True, eq=False)
class SiteForecast:
    """Per slot: the building's load, PV generation, the price of import and of export, per Wh."""

    building_w: FloatArray
    pv_w: FloatArray
    price_per_wh: FloatArray
    feed_in_per_wh: FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class SitePlan:
    ev_w: FloatArray  # (EVs, slots)
    ess_charge_w: FloatArray
    ess_discharge_w: FloatArray
    stored_wh: FloatArray  # at the end of each slot
    import_w: FloatArray
    export_w: FloatArray
    peak_import_w: float
    cost: float  # the energy bill over the horizon, in the prices' currency
    short_wh: FloatArray  # per EV, what the plan leaves short of ΔE_min
    status: str
    ok: bool


@dataclass(frozen=True, slots=True, eq=False)
class EvFlexibility:
    """The EVs as one aggregate, per slot: the cumulative energy they need by its end (at least), the
    cumulative energy beyond that they can take by its end (at most), the most power they can take in it."""

    need_wh: FloatArray
    extra_wh: FloatArray
    max_w: FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class _SiteColumns:
    imp: IntArray
    exp: IntArray
    peak: IntArray
    smooth: IntArray
    ess: tuple[IntArray, IntArray, IntArray] | None = None  # charge, discharge, stored


class Lp:
    """Columns with bounds and costs, rows in blocks of triplets; the LP handed to HiGHS in one piece."""

    def __init__(self) -> None:
        self.lower: list[FloatArray] = []
        self.upper: list[FloatArray] = []
        self.cost: list[FloatArray] = []
        self.n_cols = 0
        self.rows: list[tuple[IntArray, IntArray, FloatArray]] = []
        self.row_lower: list[FloatArray] = []
        self.row_upper: list[FloatArray] = []
        self.n_rows = 0

    def columns(
        self, n: int, upper: FloatArray | float, cost: FloatArray | float = 0.0, lower: float = 0.0
    ) -> IntArray:
        first = self.n_cols
        self.n_cols += n
        self.lower.append(np.full(n, lower))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)).copy())
        self.cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), (n,)).copy())
        return np.arange(first, first + n, dtype=np.int64)

    def rows_of(
        self,
        n: int,
        terms: Sequence[tuple[npt.NDArray[np.integer[Any]], IntArray, FloatArray | float]],
        lower: FloatArray | float,
        upper: FloatArray | float,
    ) -> None:
        """``n`` rows at once; each term is (row within the block, column, coefficient), arrays alike."""
        for row, cols, vals in terms:
            row_b, cols_b = np.broadcast_arrays(np.asarray(row, dtype=np.int64), cols)
            vals_b = np.broadcast_to(np.asarray(vals, dtype=np.float64), cols_b.shape)
            self.rows.append((row_b.ravel() + self.n_rows, cols_b.ravel(), vals_b.ravel()))
        self.row_lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,)))
        self.row_upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)))
        self.n_rows += n

    def solve(self, highs: highspy.Highs) -> tuple[bool, str, FloatArray]:
        rows = np.concatenate([r for r, _, _ in self.rows])
        cols = np.concatenate([c for _, c, _ in self.rows])
        vals = np.concatenate([v for _, _, v in self.rows])
        order = np.lexsort((rows, cols))
        starts = np.zeros(self.n_cols + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=self.n_cols), out=starts[1:])
        lp = highspy.HighsLp()
        lp.num_col_ = self.n_cols
        lp.num_row_ = self.n_rows
        lp.col_cost_ = np.concatenate(self.cost)
        lp.col_lower_ = np.concatenate(self.lower)
        lp.col_upper_ = np.concatenate(self.upper)
        lp.row_lower_ = np.concatenate(self.row_lower)
        lp.row_upper_ = np.concatenate(self.row_upper)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = starts
        lp.a_matrix_.index_ = rows[order]
        lp.a_matrix_.value_ = vals[order]
        highs.clearModel()
        highs.passModel(lp)
        highs.run()
        ok = highs.getModelStatus() == highspy.HighsModelStatus.kOptimal
        x = np.asarray(highs.getSolution().col_value) if ok else np.zeros(self.n_cols)
        return ok, highs.modelStatusToString(highs.getModelStatus()), x


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """How a site plan is made, for the simulator's step (``site_plan_step``) and the live EMS
    (``ems.live_plan``) alike: its slots and horizon, HiGHS's time limit and the objective's prices."""

    slot_s: float = 900.0
    horizon_s: float = 24 * SECONDS_PER_HOUR
    time_limit_s: float = 1.0  # HiGHS's own limit; the live EMS waits for its thread a little longer
    feed_in_per_kwh: float = 0.0
    #: the price of the horizon's peak import, per kW (a demand charge spread over the plan's day)
    peak_price_per_kw: float = 0.1
    #: round-trip losses the plan counts with, per direction; a site file does not say them
    ess_efficiency: float = 0.95
    #: what a Wh towards ΔE_min costs per hour it comes later (``SitePlanner``): far above any difference
    #: of prices, so that ΔE_min is charged as soon as it can be. Drivers leave hours before the departure
    #: they gave as often as after it (ACN-Data); 0 lets the plan shift ΔE_min within the stay too
    need_early_per_kwh_h: float = 5.0

    @property
    def slots(self) -> int:
        return max(1, round(self.horizon_s / self.slot_s))

    def planner(self) -> SitePlanner:
        return SitePlanner.in_slots(
            self.slot_s, self.peak_price_per_kw, self.time_limit_s, self.need_early_per_kwh_h
        )


class SitePlanner:
    """Plans the site over ``len(forecast.price_per_wh)`` slots of ``dt_h`` hours."""

    def __init__(
        self,
        peak_price_per_w: float = 0.0,
        smooth_per_w: float = 1e-9,
        time_limit_s: float | None = None,
        need_early_per_wh: float = 0.0,
    ) -> None:
        """``need_early_per_wh``: what a Wh towards ΔE_min costs for each slot it comes later. Above the
        largest price difference between two slots it charges ΔE_min as soon as it can (the EV's own
        maximum, the grid and the ESS allow): a driver who leaves before the departure given still has
        it; the plan then shifts only the energy beyond ΔE_min and the ESS."""
        self._need_early = need_early_per_wh
        self._peak_price = peak_price_per_w
        self._smooth = smooth_per_w
        self._highs = highspy.Highs()  # type: ignore[no-untyped-call]
        self._highs.setOptionValue("output_flag", False)
        self._highs.setOptionValue("threads", 1)
        self._time_limit_s = time_limit_s

    @classmethod
    def in_slots(
        cls, slot_s: float, peak_price_per_kw: float, time_limit_s: float, need_early_per_kwh_h: float
    ) -> SitePlanner:
        """A planner with its prices in the units people give them: per kW of peak, per kWh and hour of
        delay for ΔE_min."""
        return cls(
            peak_price_per_w=peak_price_per_kw / 1000,
            time_limit_s=time_limit_s,
            need_early_per_wh=need_early_per_kwh_h / 1000 * slot_s / SECONDS_PER_HOUR,
        )

    def solve(
        self,
        evs: EvNeeds,
        forecast: SiteForecast,
        dt_h: float,
        max_import_w: float,
        max_export_w: float,
        ess: Storage | None = None,
    ) -> SitePlan:
        n_t = forecast.price_per_wh.size
        n_ev = evs.max_w.size
        lp = Lp()
        slots = np.arange(n_t)
        present = (slots[None, :] >= evs.start_slot[:, None]) & (slots[None, :] < evs.end_slot[:, None])
        ev_max = np.where(present, evs.max_w[:, None], 0.0)
        x_cost = np.broadcast_to(self._need_early * slots * dt_h, (n_ev, n_t))
        x = lp.columns(n_ev * n_t, ev_max.ravel(), x_cost.ravel()).reshape(n_ev, n_t)
        wish_ok = present.copy()
        if evs.wish_cap_per_wh is not None:
            wish_ok &= forecast.price_per_wh[None, :] <= evs.wish_cap_per_wh[:, None] + 1e-12
        y = lp.columns(n_ev * n_t, np.where(wish_ok, ev_max, 0.0).ravel(), -W_WISH * dt_h).reshape(n_ev, n_t)
        short = lp.columns(n_ev, np.inf, W_NEED)
        each_ev = np.arange(n_ev)[:, None]
        needed = evs.needed_wh.astype(np.float64)
        site = self._site_columns(lp, forecast, max_import_w, max_export_w, ess, dt_h)
        # Σ_t x_it·dt + short_i ≥ ΔE_min,i;  Σ_t x_it·dt ≤ ΔE_min,i;  Σ_t y_it·dt ≤ ΔE_max,i − ΔE_min,i
        lp.rows_of(n_ev, [(each_ev, x, dt_h), (np.arange(n_ev), short, 1.0)], needed, np.inf)
        lp.rows_of(n_ev, [(each_ev, x, dt_h)], -np.inf, needed)
        lp.rows_of(n_ev, [(each_ev, y, dt_h)], -np.inf, np.maximum(evs.wished_wh - needed, 0.0))
        at = np.flatnonzero(present.ravel())  # x_it + y_it ≤ P_i while the EV is there
        within = np.arange(at.size)
        lp.rows_of(
            at.size, [(within, x.ravel()[at], 1.0), (within, y.ravel()[at], 1.0)], -np.inf, ev_max.ravel()[at]
        )
        return self._solve_site(lp, site, forecast, dt_h, ess, (x, y), short)

    def solve_aggregate(
        self,
        flex: EvFlexibility,
        forecast: SiteForecast,
        dt_h: float,
        max_import_w: float,
        max_export_w: float,
        ess: Storage | None = None,
    ) -> SitePlan:
        """The plan with the EVs as one aggregate (the live EMS, which sees only the CSM's demand profile,
        ``csm.flexibility``): per slot t, power towards ΔE_min (n_t) and beyond it (w_t), with

            Σ_{τ≤t} n_τ·dt + short_t ≥ need_t (the cumulative need by the slot's end),  Σ_t n_t·dt ≤ need_T
            Σ_{τ≤t} w_τ·dt ≤ extra_t (the energy beyond ΔE_min no sooner than it can be),  n_t + w_t ≤ P_t

        and the site's rows as in ``solve``. ``plan.ev_w`` has one row; ``plan.short_wh`` is what the plan
        leaves short of the need at each slot's end."""
        n_t = forecast.price_per_wh.size
        lp = Lp()
        slots = np.arange(n_t)
        top = flex.max_w.astype(np.float64)
        n = lp.columns(n_t, top, self._need_early * dt_h * slots.astype(np.float64))
        w = lp.columns(n_t, top, -W_WISH * dt_h)
        short = lp.columns(n_t, np.inf, W_NEED)  # a Wh short for k slots costs k·W_NEED: catch up soon
        site = self._site_columns(lp, forecast, max_import_w, max_export_w, ess, dt_h)
        upto = np.flatnonzero(np.tril(np.ones((n_t, n_t), dtype=bool)).ravel())
        rows, cols = upto // n_t, upto % n_t  # row t holds the slots τ ≤ t
        lp.rows_of(n_t, [(rows, n[cols], dt_h), (slots, short, 1.0)], flex.need_wh, np.inf)
        lp.rows_of(1, [(np.zeros(n_t, dtype=np.int64), n, dt_h)], -np.inf, flex.need_wh[-1:])
        lp.rows_of(n_t, [(rows, w[cols], dt_h)], -np.inf, flex.extra_wh)
        lp.rows_of(n_t, [(slots, n, 1.0), (slots, w, 1.0)], -np.inf, top)
        return self._solve_site(lp, site, forecast, dt_h, ess, (n[None, :], w[None, :]), short)

    def _site_columns(
        self,
        lp: Lp,
        forecast: SiteForecast,
        max_import_w: float,
        max_export_w: float,
        ess: Storage | None,
        dt_h: float,
    ) -> _SiteColumns:
        n_t = forecast.price_per_wh.size
        imp = lp.columns(n_t, max_import_w, forecast.price_per_wh * dt_h)
        exp = lp.columns(n_t, max_export_w, -forecast.feed_in_per_wh * dt_h)
        peak = lp.columns(1, np.inf, self._peak_price)
        smooth = lp.columns(n_t, np.inf, self._smooth)
        if ess is None:
            return _SiteColumns(imp, exp, peak, smooth)
        wear = ess.cycle_cost_per_wh * dt_h
        c = lp.columns(n_t, ess.max_charge_w, wear)
        d = lp.columns(n_t, ess.max_discharge_w, wear)
        end_value = np.zeros(n_t)
        end_value[-1] = -ess.end_value_per_wh
        s = lp.columns(n_t, ess.capacity_wh, end_value, lower=ess.min_wh)
        return _SiteColumns(imp, exp, peak, smooth, (c, d, s))

    def _solve_site(
        self,
        lp: Lp,
        site: _SiteColumns,
        forecast: SiteForecast,
        dt_h: float,
        ess: Storage | None,
        ev: tuple[IntArray, IntArray],
        short: IntArray,
    ) -> SitePlan:
        """The site's rows (the balance at the grid access, the peak, smoothness, the ESS), given the EVs'
        columns ``ev`` (each: rows × slots), then HiGHS."""
        n_t = forecast.price_per_wh.size
        slots = np.arange(n_t)
        imp, exp = site.imp, site.exp
        # m_t − e_t − Σ_i (x_it + y_it) − c_t + d_t = building_t − pv_t
        net = forecast.building_w - forecast.pv_w
        balance = [(slots, imp, 1.0), (slots, exp, -1.0), *((slots[None, :], cols, -1.0) for cols in ev)]
        if site.ess is not None:
            balance += [(slots, site.ess[0], -1.0), (slots, site.ess[1], 1.0)]
        lp.rows_of(n_t, balance, net, net)
        lp.rows_of(n_t, [(slots, site.peak[0], 1.0), (slots, imp, -1.0)], 0.0, np.inf)  # p ≥ m_t
        later = slots[1:]  # u_t ≥ ±(m_t − m_{t−1})
        for sign in (1.0, -1.0):
            step = [
                (later - 1, site.smooth[1:], 1.0),
                (later - 1, imp[1:], -sign),
                (later - 1, imp[:-1], sign),
            ]
            lp.rows_of(n_t - 1, step, 0.0, np.inf)
        if ess is not None and site.ess is not None:
            # s_t − s_{t−1} − η·c_t·dt + d_t·dt/η = 0, s_{−1} the energy stored now
            c, d, s = site.ess
            eta = ess.efficiency
            dynamics = [
                (slots, s, 1.0),
                (later, s[:-1], -1.0),
                (slots, c, -eta * dt_h),
                (slots, d, dt_h / eta),
            ]
            rhs = np.zeros(n_t)
            rhs[0] = ess.stored_wh
            lp.rows_of(n_t, dynamics, rhs, rhs)
        if self._time_limit_s is not None:
            # HiGHS checks ``time_limit`` against its instance's run time summed over every solve.
            self._highs.setOptionValue("time_limit", self._highs.getRunTime() + self._time_limit_s)
        ok, status, sol = lp.solve(self._highs)
        ev_w = sum((sol[cols] for cols in ev), np.zeros(ev[0].shape))
        zeros = np.zeros(n_t)
        stored = site.ess
        return SitePlan(
            ev_w=ev_w,
            ess_charge_w=sol[stored[0]] if stored is not None else zeros,
            ess_discharge_w=sol[stored[1]] if stored is not None else zeros,
            stored_wh=sol[stored[2]] if stored is not None else zeros,
            import_w=sol[imp],
            export_w=sol[exp],
            peak_import_w=float(sol[site.peak[0]]),
            cost=float(
                ((sol[imp] * forecast.price_per_wh - sol[exp] * forecast.feed_in_per_wh) * dt_h).sum()
            ),
            short_wh=sol[short],
            status=status,
            ok=ok,
        )


class PlanEssReason(StrEnum):
    """Why the ESS set-point taken from the plan is what it is."""

    PLANNED = "site_plan"  # as planned
    IMPORT_LIMIT = "site_plan_import_limit"  # discharges more (or charges less) to hold the import limit
    EXPORT_LIMIT = "site_plan_export_limit"  # discharges less (or charges more) to hold the export limit
    ESS_LIMIT = "site_plan_ess_limit"  # the ESS's power or its energy bounds over the step
    CIRCUIT_ROOM = "site_plan_circuit_room"  # the fuses on the ESS's circuit leave no more room to charge


@dataclass(frozen=True, slots=True)
class PlannedSetpoint:
    discharge_w: float  # negative: charging
    reason: PlanEssReason
    grid_w: float


def follow_plan(
    planned_discharge_w: float,
    building: BuildingPower,
    ev_w: float,
    grid: GridConnection,
    ess: Ess | None,
    ess_state: EssState | None,
    step_s: float,
    ess_charge_room_w: float = float("inf"),
) -> PlannedSetpoint | None:
    """The plan's ESS set-point for this step, within the rules ``ems.balance.settle`` keeps.

    The plan was made with forecasts a slot ago; the step knows the measured building and the EVs' power
    now. The set-point is clamped to what keeps the grid access within its import and export limits, the
    ESS within its power and, by the step's end, its energy bounds (eq. 3.2.6.4), and its charging within
    the room the fuses on its circuit leave. Where these rules contradict each other (the import limit
    needs more discharge than the ESS has) there is no set-point to follow: None, and ``settle`` decides.
    """
    meter_w = building.net_w + ev_w
    lowest = (
        (meter_w - grid.max_import_w, PlanEssReason.IMPORT_LIMIT),
        (-ess_charge_limit_w(ess, ess_state, step_s), PlanEssReason.ESS_LIMIT),
        (-max(ess_charge_room_w, 0.0), PlanEssReason.CIRCUIT_ROOM),
    )
    highest = (
        (meter_w + grid.max_export_w, PlanEssReason.EXPORT_LIMIT),
        (ess_discharge_limit_w(ess, ess_state, step_s), PlanEssReason.ESS_LIMIT),
    )
    low, low_reason = max(lowest, key=lambda b: b[0])
    high, high_reason = min(highest, key=lambda b: b[0])
    if low > high + _TOL_W:
        return None
    if planned_discharge_w < low:
        return PlannedSetpoint(low, low_reason, meter_w - low)
    if planned_discharge_w > high:
        return PlannedSetpoint(high, high_reason, meter_w - high)
    return PlannedSetpoint(planned_discharge_w, PlanEssReason.PLANNED, meter_w - planned_discharge_w)

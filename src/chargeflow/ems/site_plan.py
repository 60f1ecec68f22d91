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
              + Σ_t (price_t·m_t − feed_in_t·e_t)·dt               (then the energy bill)
              + peak_price·p + smooth·Σ u_t                        (then the peak import, then smoothness)

The weights make it lexicographic in effect: a Wh short of ΔE_min costs ``W_need`` (1,000 per Wh), a Wh
of wish is worth ``W_wish`` (1 per Wh), both far above any price per Wh (0.0001–0.001), so the bill never
buys a shortfall and the wish is bought wherever its cap allows. PV self-consumption follows from the bill:
a Wh exported earns ``feed_in`` (≤ the price) where storing or charging it saves the price later.

Pure: numbers in, plan out; HiGHS is the only state.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

W_NEED = 1000.0  # per Wh short of ΔE_min
W_WISH = 1.0  # per Wh beyond ΔE_min, up to ΔE_max


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


class _Lp:
    """Columns with bounds and costs, rows as triplets; the LP handed to HiGHS in one piece."""

    def __init__(self) -> None:
        self.lower: list[FloatArray] = []
        self.upper: list[FloatArray] = []
        self.cost: list[FloatArray] = []
        self.n_cols = 0
        self.rows: list[tuple[IntArray, IntArray, FloatArray]] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []

    def columns(self, n: int, upper: FloatArray | float, cost: FloatArray | float = 0.0) -> IntArray:
        first = self.n_cols
        self.n_cols += n
        self.lower.append(np.zeros(n))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)).copy())
        self.cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), (n,)).copy())
        return np.arange(first, first + n, dtype=np.int64)

    def row(self, cols: IntArray, vals: FloatArray | float, lower: float, upper: float) -> None:
        vals = np.broadcast_to(np.asarray(vals, dtype=np.float64), cols.shape)
        self.rows.append((np.full(cols.size, len(self.row_lower), dtype=np.int64), cols, vals))
        self.row_lower.append(lower)
        self.row_upper.append(upper)

    def solve(self, highs: highspy.Highs) -> tuple[bool, str, FloatArray]:
        rows = np.concatenate([r for r, _, _ in self.rows])
        cols = np.concatenate([c for _, c, _ in self.rows])
        vals = np.concatenate([v for _, _, v in self.rows])
        order = np.lexsort((rows, cols))
        starts = np.zeros(self.n_cols + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=self.n_cols), out=starts[1:])
        lp = highspy.HighsLp()
        lp.num_col_ = self.n_cols
        lp.num_row_ = len(self.row_lower)
        lp.col_cost_ = np.concatenate(self.cost)
        lp.col_lower_ = np.concatenate(self.lower)
        lp.col_upper_ = np.concatenate(self.upper)
        lp.row_lower_ = np.asarray(self.row_lower)
        lp.row_upper_ = np.asarray(self.row_upper)
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


class SitePlanner:
    """Plans the site over ``len(forecast.price_per_wh)`` slots of ``dt_h`` hours."""

    def __init__(self, peak_price_per_w: float = 0.0, smooth_per_w: float = 1e-9) -> None:
        self._peak_price = peak_price_per_w
        self._smooth = smooth_per_w
        self._highs = highspy.Highs()  # type: ignore[no-untyped-call]
        self._highs.setOptionValue("output_flag", False)
        self._highs.setOptionValue("threads", 1)

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
        lp = _Lp()
        slots = np.arange(n_t)
        present = (slots[None, :] >= evs.start_slot[:, None]) & (slots[None, :] < evs.end_slot[:, None])
        ev_max = np.where(present, evs.max_w[:, None], 0.0)
        x = lp.columns(n_ev * n_t, ev_max.ravel()).reshape(n_ev, n_t)
        wish_ok = present.copy()
        if evs.wish_cap_per_wh is not None:
            wish_ok &= forecast.price_per_wh[None, :] <= evs.wish_cap_per_wh[:, None] + 1e-12
        y = lp.columns(n_ev * n_t, np.where(wish_ok, ev_max, 0.0).ravel(), -W_WISH * dt_h).reshape(n_ev, n_t)
        short = lp.columns(n_ev, np.inf, W_NEED)
        imp = lp.columns(n_t, max_import_w, forecast.price_per_wh * dt_h)
        exp = lp.columns(n_t, max_export_w, -forecast.feed_in_per_wh * dt_h)
        peak = lp.columns(1, np.inf, self._peak_price)
        smooth = lp.columns(n_t, np.inf, self._smooth)
        if ess is not None:
            c = lp.columns(n_t, ess.max_charge_w)
            d = lp.columns(n_t, ess.max_discharge_w)
            s = lp.columns(n_t, ess.capacity_wh)
        for i in range(n_ev):
            lp.row(np.r_[x[i], short[i : i + 1]], np.r_[np.full(n_t, dt_h), 1.0], evs.needed_wh[i], np.inf)
            lp.row(x[i], dt_h, -np.inf, float(evs.needed_wh[i]))
            lp.row(y[i], dt_h, -np.inf, float(max(evs.wished_wh[i] - evs.needed_wh[i], 0.0)))
            for k in np.flatnonzero(present[i]):
                lp.row(np.array([x[i, k], y[i, k]]), 1.0, -np.inf, float(evs.max_w[i]))
        net = forecast.building_w - forecast.pv_w
        for t in range(n_t):
            cols = np.r_[imp[t], exp[t], x[:, t], y[:, t]]
            vals = np.r_[1.0, -1.0, -np.ones(2 * n_ev)]
            if ess is not None:
                cols = np.r_[cols, c[t], d[t]]
                vals = np.r_[vals, -1.0, 1.0]
            lp.row(cols, vals, float(net[t]), float(net[t]))
            lp.row(np.array([peak[0], imp[t]]), np.array([1.0, -1.0]), 0.0, np.inf)
            if t > 0:
                step = np.array([smooth[t], imp[t], imp[t - 1]])
                lp.row(step, np.array([1.0, -1.0, 1.0]), 0.0, np.inf)
                lp.row(step, np.array([1.0, 1.0, -1.0]), 0.0, np.inf)
            if ess is not None:
                eta = ess.efficiency
                before = s[t - 1 : t] if t > 0 else np.zeros(0, dtype=np.int64)
                cols_s = np.r_[s[t], before, c[t], d[t]]
                vals_s = np.r_[1.0, -np.ones(before.size), -eta * dt_h, dt_h / eta]
                rhs = ess.stored_wh if t == 0 else 0.0
                lp.row(cols_s, vals_s, rhs, rhs)
                lp.row(s[t : t + 1], 1.0, ess.min_wh, np.inf)
        ok, status, sol = lp.solve(self._highs)
        ev_w = sol[x] + sol[y]
        zeros = np.zeros(n_t)
        return SitePlan(
            ev_w=ev_w,
            ess_charge_w=sol[c] if ess is not None else zeros,
            ess_discharge_w=sol[d] if ess is not None else zeros,
            stored_wh=sol[s] if ess is not None else zeros,
            import_w=sol[imp],
            export_w=sol[exp],
            peak_import_w=float(sol[peak[0]]),
            cost=float(
                ((sol[imp] * forecast.price_per_wh - sol[exp] * forecast.feed_in_per_wh) * dt_h).sum()
            ),
            short_wh=sol[short],
            status=status,
            ok=ok,
        )

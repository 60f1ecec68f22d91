"""The headless simulator: a whole site stepped through time with the same actors wired in memory.

Each step: EVs arrive and leave as the sessions say; the smart meter reports the building and PV (with
noise and a delay, as real meters do); the control step (CSM demand → EMS grant → CSM split → ESS) sees
only those reports and the EVs' energy so far; then physics runs — every EV draws what its limit, its
on-board charger and its battery allow, the ESS follows its set-point — and the true grid power and the
true current on every phase of every circuit are checked against their limits.

The controller works with a safety margin below the real limits (``margin_pct``), because it acts on
readings that are a step old and noisy; the check against the limits uses the true values and no margin.
No sockets and no clock: a month of a 50-station site runs in well under a minute.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from chargeflow.control.allocate import StepInput, control_step
from chargeflow.control.allocate_mpc import MpcPlanner
from chargeflow.control.site_plan_step import PriceOutlook, SitePlanStep
from chargeflow.csm.demand import EvSession, Preferences
from chargeflow.csm.evmax import EvMaxEstimate, learn_ev_max
from chargeflow.csm.split import Strategy
from chargeflow.ems.forecast import forecast_error
from chargeflow.ems.site_forecast import BuildingForecaster, ForecastScore, PvForecaster
from chargeflow.sim.data import PriceSeries, Profile, SessionRecord
from chargeflow.sim.ev import EvModel, draw
from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import ChargingPoint, Site, with_margin
from chargeflow.site.tree import building_loads_a, check_site
from chargeflow.units import SECONDS_PER_HOUR

UNCONTROLLED = "uncontrolled"
#: the predictive optimiser (``allocate_mpc``), planning in slots of at least 5 minutes, with EDF as the
#: core split it falls back to
MPC = "mpc"
STRATEGIES = (UNCONTROLLED, *(s.value for s in Strategy), MPC)


@dataclass(frozen=True, slots=True)
class SimConfig:
    site: Site
    start: datetime
    end: datetime
    strategy: str = Strategy.EDF.value
    step_s: float = 60.0
    building: Profile | None = None
    pv: Profile | None = None
    prices: PriceSeries | None = None
    margin_pct: float = 3.0  # the controller's safety margin below grid and fuse limits
    meter_noise_pct: float = 1.0  # standard deviation of the meter's error
    meter_delay_steps: int = 1
    temperature_c: float = 15.0
    ess_initial_soc: float = 0.5
    need_share: float = 1.0  # ΔE_min as a share of the energy the EV really took (see ``preferences_of``)
    planned_departure: str = "estimated"  # what the controller is told: the driver's estimate, or "actual"
    seed: int = 1
    #: plan the site over the next day (``site_plan_step``) on top of the strategy's rule-based step
    site_plan: bool = False
    #: (latitude, longitude) of the sun the PV forecast's clear-sky model follows; None: no PV forecast
    pv_location: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class StepRow:
    time: datetime
    grid_w: float
    building_w: float
    pv_w: float
    ess_w: float
    ev_w: float
    granted_w: float
    circuits: tuple[tuple[float, float], ...]  # per circuit: highest phase current, that phase's fuse


@dataclass(slots=True)
class SimResult:
    sessions: int = 0
    turned_away: int = 0
    energy_requested_kwh: float = 0.0
    energy_delivered_kwh: float = 0.0
    needs_met_pct: float = 0.0
    grid_import_kwh: float = 0.0
    grid_export_kwh: float = 0.0
    peak_import_w: float = 0.0
    limit_violations: int = 0  # steps in which the grid connection or any fuse phase was over its limit
    grid_violations: int = 0
    max_overshoot_w: float = 0.0
    fuse_violations: int = 0
    max_fuse_overshoot_a: float = 0.0
    pv_self_consumption_pct: float = 0.0
    energy_cost: Decimal = Decimal(0)
    ms_per_step_median: float = 0.0
    steps: int = 0
    mpc_fallbacks: int = 0  # steps in which the mpc plan was late or broke a rule and the core split stood
    mpc_fallback_causes: dict[str, int] = field(default_factory=dict)  # by cause (``MpcPlanner.causes``)
    ms_per_step_mean: float = 0.0
    #: needs met among the sessions that left before the end: a strategy that charges later is not judged
    #: by the energy of EVs still plugged in when the run stops
    needs_met_departed_pct: float = 0.0
    sessions_at_end: int = 0
    site_plan_fallbacks: int = 0  # steps in which the site plan failed or was late and the rule stood
    site_plan_solves: int = 0
    #: per forecast ("pv", "building") and lead ("15min", "1h"): MAE and bias in kW, and in % of the PV
    #: peak or of the mean building load; None without the site plan
    forecast_errors: dict[str, dict[str, dict[str, float]]] | None = None
    #: the departure the controller was told against the real one, over the sessions placed
    departure_error: dict[str, float] = field(default_factory=dict)
    step_times_ms: list[float] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "turned_away": self.turned_away,
            "energy_requested_kwh": round(self.energy_requested_kwh, 3),
            "energy_delivered_kwh": round(self.energy_delivered_kwh, 3),
            "needs_met_pct": round(self.needs_met_pct, 2),
            "grid_import_kwh": round(self.grid_import_kwh, 3),
            "grid_export_kwh": round(self.grid_export_kwh, 3),
            "peak_import_w": round(self.peak_import_w, 1),
            "limit_violations": self.limit_violations,
            "grid_violations": self.grid_violations,
            "max_overshoot_w": round(self.max_overshoot_w, 1),
            "fuse_violations": self.fuse_violations,
            "max_fuse_overshoot_a": round(self.max_fuse_overshoot_a, 2),
            "pv_self_consumption_pct": round(self.pv_self_consumption_pct, 2),
            "energy_cost": str(self.energy_cost.quantize(Decimal("0.01"))),
            "ms_per_step_median": round(self.ms_per_step_median, 3),
            "steps": self.steps,
            "mpc_fallbacks": self.mpc_fallbacks,
            "mpc_fallback_causes": dict(sorted(self.mpc_fallback_causes.items())),
            "ms_per_step_mean": round(self.ms_per_step_mean, 3),
            "needs_met_departed_pct": round(self.needs_met_departed_pct, 2),
            "sessions_at_end": self.sessions_at_end,
            "site_plan_fallbacks": self.site_plan_fallbacks,
            "site_plan_solves": self.site_plan_solves,
            "forecast_errors": self.forecast_errors,
            "departure_error": self.departure_error,
        }


def departure_error(told_h: list[float], stayed_h: list[float]) -> dict[str, float]:
    """How far the departure the controller plans with (the driver's estimate, at least 15 minutes after
    arrival) was from the real one: MAE and bias in hours (positive: told later than the EV left), the
    share of EVs that left more than an hour before it and more than an hour after it."""
    e = forecast_error(told_h, stayed_h)
    n = max(e.n, 1)
    early = sum(t - a > 1.0 for t, a in zip(told_h, stayed_h, strict=True))
    late = sum(a - t > 1.0 for t, a in zip(told_h, stayed_h, strict=True))
    return {
        "mae_h": round(e.mae, 2),
        "bias_h": round(e.bias, 2),
        "mean_stay_h": round(e.mean_actual, 2),
        "left_1h_before_pct": round(100.0 * early / n, 1),
        "left_1h_after_pct": round(100.0 * late / n, 1),
        "sessions": e.n,
    }


@dataclass(slots=True)
class _Connected:
    record: SessionRecord
    point: ChargingPoint
    ev: EvModel
    preferences: Preferences
    soc: float
    charged_wh: float = 0.0
    limit_a: float = 0.0
    estimate: EvMaxEstimate = field(default_factory=EvMaxEstimate)
    phases_seen: int | None = None  # the phases the EV draws on, from the station's per-phase meter values


def preferences_of(
    record: SessionRecord, need_share: float, planned_departure: str = "estimated"
) -> Preferences:
    """The driver's preferences for an ACN session.

    ACN drivers' requested energy is often far above what their EV took (the app asks before the EV says
    how full it is); ACN-Sim therefore uses the delivered energy as the demand. Here ΔE_min is the energy
    the EV really took (times ``need_share``), ΔE_max the larger of request and delivery, and the departure
    is the driver's own estimate — which real drivers miss both ways — or, as ACN-Sim assumes, the actual one.
    """
    wished = max(record.requested_wh, record.delivered_wh)
    needed = min(round(record.delivered_wh * need_share), wished)
    told = record.departure if planned_departure == "actual" else record.estimated_departure
    departure = max(told, record.arrival + timedelta(minutes=15))
    return Preferences(needed, wished, departure)


def ev_for(record: SessionRecord, point: ChargingPoint, rng: random.Random) -> tuple[EvModel, float]:
    """An EV for a session, and its state of charge on arrival.

    The battery has room for ΔE_max and ends below the taper region; the on-board charger is drawn from
    common sizes but never slower than what the real EV must have managed: it took the delivered energy
    within its real stay, so at full rate on this station it can take it too (with a quarter to spare for
    the taper). A station slower than the real one is then the only physical reason for an unmet need.
    """
    room = max(record.requested_wh, record.delivered_wh)
    capacity = max(rng.choice((40_000, 60_000, 77_000, 100_000)), round(room / 0.7))
    phases = rng.choice((1, 3, 3)) if point.phases == 3 else 1
    stay_h = max((record.departure - record.arrival).total_seconds() / SECONDS_PER_HOUR, 0.25)
    required_a = 1.25 * record.delivered_wh / (stay_h * phases * 230.0)
    usual_a = rng.choice((16.0, 32.0)) if phases == 1 else rng.choice((16.0, 16.0, 32.0))
    charger_a = min(max(usual_a, required_a), 32.0)
    model = EvModel(capacity_wh=capacity, charger_phases=phases, charger_max_current_a=charger_a)
    return model, max(0.05, 0.85 - room / capacity)


def day_ahead(prices: PriceSeries, timezone: str) -> PriceOutlook:
    """Prices as a day-ahead market makes them known: the next day's from 13:00 local time on (the
    auction closes at noon), before that only today's. Hours not known yet repeat the last known day."""
    zone = ZoneInfo(timezone)

    def outlook(now: datetime, at: datetime) -> Decimal:
        local = now.astimezone(zone)
        days = 2 if local.hour >= 13 else 1
        known_until = datetime.combine(local.date() + timedelta(days=days), clock_time(0), zone)
        if at >= known_until:
            at -= timedelta(days=math.ceil((at - known_until) / timedelta(days=1) + 1e-9))
        return prices.at(at)

    return outlook


@dataclass(slots=True)
class _ForecastStudy:
    """Each plan slot, the forecasts for the slot one slot and one hour ahead; scored against the meter."""

    planner: SitePlanStep
    pv_peak_w: float
    scores: dict[tuple[str, str], ForecastScore] = field(default_factory=dict)
    _slot: int | None = None

    def __post_init__(self) -> None:
        for what in ("pv", "building"):
            for lead in ("15min", "1h"):
                self.scores[what, lead] = ForecastScore(self.planner.settings.slot_s)

    def step(self, now: datetime, reading: BuildingPower) -> None:
        slot_s = self.planner.settings.slot_s
        for (what, _), score in self.scores.items():
            score.measure(now, reading.generation_w if what == "pv" else reading.consumption_w)
        slot = math.floor(now.timestamp() / slot_s)
        if slot == self._slot:
            return
        self._slot = slot
        for lead, ahead in (("15min", 1), ("1h", round(SECONDS_PER_HOUR / slot_s))):
            middle = np.array([(slot + ahead + 0.5) * slot_s])
            pv = self.planner.pv.forecast(middle)[0] if self.planner.pv is not None else 0.0
            self.scores["pv", lead].predict(slot + ahead, float(pv))
            building = self.planner.building.forecast(middle)[0]
            self.scores["building", lead].predict(slot + ahead, float(building))

    def errors(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for (what, lead), score in self.scores.items():
            e = score.error()
            base, unit = (self.pv_peak_w, "pct_of_peak") if what == "pv" else (e.mean_actual, "pct_of_mean")
            pct = 100.0 / base if base > 0 else 0.0
            out.setdefault(what, {})[lead] = {
                "mae_kw": round(e.mae / 1000, 3),
                "bias_kw": round(e.bias / 1000, 3),
                f"mae_{unit}": round(e.mae * pct, 2),
                f"bias_{unit}": round(e.bias * pct, 2),
                "slots": e.n,
            }
        return out


def _site_planner(config: SimConfig, pv_peak_w: float) -> SitePlanStep:
    site = config.site
    pv = None
    if config.pv_location is not None and pv_peak_w > 0:
        pv = PvForecaster(config.pv_location[0], config.pv_location[1], pv_peak_w)
    prices = day_ahead(config.prices, site.timezone) if config.prices is not None else None
    return SitePlanStep(BuildingForecaster(site.timezone), pv, prices)


def simulate(
    config: SimConfig,
    records: Iterable[SessionRecord],
    progress: Callable[[int, int], None] | None = None,
    on_step: Callable[[StepRow], None] | None = None,
) -> SimResult:
    site = config.site
    tree = check_site(site)
    view = with_margin(site, config.margin_pct)
    view_tree = check_site(view)
    rng = random.Random(config.seed)
    pending = deque(
        sorted((r for r in records if config.start <= r.arrival < config.end), key=lambda r: r.arrival)
    )
    points = {cp.id: cp for cp in site.charging_points}
    connected: dict[str, _Connected] = {}
    res = SimResult()
    planner = MpcPlanner.for_step(config.step_s) if config.strategy == MPC else None
    core = Strategy.EDF if planner is not None else None
    pv_peak = sum(p.peak_w for p in site.pv)
    site_planner = (
        _site_planner(config, pv_peak) if config.site_plan and config.strategy != UNCONTROLLED else None
    )
    study = _ForecastStudy(site_planner, pv_peak) if site_planner is not None else None
    met = finished = met_left = finished_left = 0
    building_peak = site.building_peak_w or 0.0
    ess_state = (
        EssState(site.ess.capacity_wh * config.ess_initial_soc) if site.ess and site.ess.capacity_wh else None
    )
    readings: deque[BuildingPower] = deque(maxlen=config.meter_delay_steps + 1)
    pv_generated_wh = 0.0
    pv_exported_wh = 0.0
    step = timedelta(seconds=config.step_s)
    total = int((config.end - config.start) / step)
    hours = config.step_s / SECONDS_PER_HOUR

    told_h: list[float] = []  # per session placed: the stay the controller was told, and the real one
    stayed_h: list[float] = []

    def finish(c: _Connected, left: bool = True) -> None:
        nonlocal met, finished, met_left, finished_left
        finished += 1
        met += c.charged_wh >= c.preferences.needed_wh - 1.0
        finished_left += left
        met_left += left and c.charged_wh >= c.preferences.needed_wh - 1.0
        res.energy_delivered_kwh += c.charged_wh / 1000

    now = config.start
    for n in range(total):
        for sid in [sid for sid, c in connected.items() if c.record.departure <= now]:
            finish(connected.pop(sid))
        while pending and pending[0].arrival <= now:
            record = pending.popleft()
            point = points.get(record.station_id)
            if point is None or point.id in connected:
                point = next((cp for cp in site.charging_points if cp.id not in connected), None)
            res.energy_requested_kwh += max(record.requested_wh, record.delivered_wh) / 1000
            if point is None:
                res.turned_away += 1
                continue
            res.sessions += 1
            ev, soc = ev_for(record, point, rng)
            prefs = preferences_of(record, config.need_share, config.planned_departure)
            connected[point.id] = _Connected(record, point, ev, prefs, soc)
            told_h.append((prefs.departure - record.arrival).total_seconds() / SECONDS_PER_HOUR)
            stayed_h.append((record.departure - record.arrival).total_seconds() / SECONDS_PER_HOUR)

        consumption = building_peak * (config.building.at(now) if config.building else 0.0)
        generation = pv_peak * (config.pv.at(now) if config.pv else 0.0)
        noise = config.meter_noise_pct / 100.0
        readings.append(
            BuildingPower(consumption * (1 + rng.gauss(0, noise)), generation * (1 + rng.gauss(0, noise)))
        )
        measured = readings[0].with_margin(config.margin_pct)
        price = config.prices.at(now) if config.prices else None
        if site_planner is not None and study is not None:
            # The forecasters learn from what the controller sees: the reading a delay old, unmargined.
            site_planner.observe(now - step * config.meter_delay_steps, readings[0])
            study.step(now, readings[-1])

        t0 = time.perf_counter()
        if config.strategy == UNCONTROLLED:
            # Full rate until the driver's target (ΔE_max), as an EV's own charge limit would stop it.
            for c in connected.values():
                c.limit_a = c.point.max_current_a if c.charged_wh < c.preferences.wished_wh else 0.0
            granted_w = sum(c.limit_a * c.point.phases * site.voltage_v for c in connected.values())
            ess_discharge = 0.0
        else:
            sessions = tuple(
                EvSession.at(
                    c.point, c.preferences, int(c.charged_wh), c.estimate.current_a, phases=c.phases_seen
                )
                for c in connected.values()
            )
            result = control_step(
                StepInput(
                    view,
                    now,
                    config.step_s,
                    measured,
                    sessions,
                    core or Strategy(config.strategy),
                    ess_state,
                    price,
                ),
                view_tree,
                planner,
                site_planner,
            )
            for lim in result.limits:
                connected[lim.id].limit_a = lim.current_a
            granted_w = result.granted_w
            ess_discharge = result.ess_discharge_w
        res.step_times_ms.append((time.perf_counter() - t0) * 1000.0)

        loads = building_loads_a(site, tree, consumption)
        ev_w = 0.0
        for c in connected.values():
            d = draw(
                c.ev, c.soc, config.temperature_c, c.limit_a, c.point.phases, site.voltage_v, config.step_s
            )
            c.soc += d.energy_wh / c.ev.capacity_wh
            c.charged_wh += d.energy_wh
            ev_w += d.power_w
            c.estimate = learn_ev_max(c.estimate, c.limit_a, d.current_a, c.point.min_current_a)
            if d.current_a > 0:
                c.phases_seen = d.phases
            for k in tree.constraints_of(c.point.circuit, c.point.grid_phases[: d.phases]):
                loads[k] += d.current_a
        if site.ess is not None and ess_state is not None:
            if ess_discharge < 0:
                tree.add_balanced_load(loads, site.ess.circuit, -ess_discharge / (3 * site.voltage_v))
            ess_state = EssState(ess_state.stored_wh - ess_discharge * hours)

        grid_w = consumption - generation + ev_w - ess_discharge
        over_w = max(grid_w - site.grid.max_import_w, -site.grid.max_export_w - grid_w, 0.0)
        if over_w > 1e-6:
            res.grid_violations += 1
            res.max_overshoot_w = max(res.max_overshoot_w, over_w)
        fuses = tree.fuse_limits()
        fuse_over = max(load - fuse for load, fuse in zip(loads, fuses, strict=True))
        if fuse_over > 1e-6:
            res.fuse_violations += 1
            res.max_fuse_overshoot_a = max(res.max_fuse_overshoot_a, fuse_over)
        res.limit_violations += over_w > 1e-6 or fuse_over > 1e-6
        res.peak_import_w = max(res.peak_import_w, grid_w)
        res.grid_import_kwh += max(grid_w, 0.0) * hours / 1000
        res.grid_export_kwh += max(-grid_w, 0.0) * hours / 1000
        if price is not None and grid_w > 0:
            res.energy_cost += price * Decimal(str(round(grid_w * hours / 1000, 6)))
        pv_generated_wh += generation * hours
        pv_exported_wh += max(-grid_w, 0.0) * hours
        if on_step is not None:
            per_circuit = []
            for ci in range(len(tree.circuits)):
                phases = loads[ci * 3 : ci * 3 + 3]
                p = phases.index(max(phases))
                per_circuit.append((phases[p], fuses[ci * 3 + p]))
            on_step(
                StepRow(
                    now, grid_w, consumption, generation, ess_discharge, ev_w, granted_w, tuple(per_circuit)
                )
            )
        if progress is not None and (n % 500 == 0 or n == total - 1):
            progress(n + 1, total)
        now += step

    for c in connected.values():  # still connected at the end: counted with what they got so far
        finish(c, left=False)
    res.steps = total
    res.mpc_fallbacks = planner.fallbacks if planner is not None else 0
    res.mpc_fallback_causes = dict(planner.causes) if planner is not None else {}
    if site_planner is not None and study is not None:
        res.site_plan_fallbacks = site_planner.fallbacks
        res.site_plan_solves = site_planner.solves
        res.forecast_errors = study.errors()
    res.departure_error = departure_error(told_h, stayed_h)
    res.needs_met_pct = 100.0 * met / finished if finished else 100.0
    res.needs_met_departed_pct = 100.0 * met_left / finished_left if finished_left else 100.0
    res.sessions_at_end = finished - finished_left
    res.pv_self_consumption_pct = 100.0 * (1 - pv_exported_wh / pv_generated_wh) if pv_generated_wh else 0.0
    res.ms_per_step_median = statistics.median(res.step_times_ms) if res.step_times_ms else 0.0
    res.ms_per_step_mean = statistics.fmean(res.step_times_ms) if res.step_times_ms else 0.0
    return res

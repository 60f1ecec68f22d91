"""Our optimiser as acnportal scheduling algorithms, so that it runs inside ACN-Sim beside its own ones.

acnportal's algorithms see the site only through its ``Interface``
(``acnportal/algorithms/base_algorithm.py``); so do these. What they read: the network's constraint
matrix, limits and phase angles (``InfrastructureInfo``), each session's remaining demand and estimated
departure (``SessionInfo``), the pilots each station accepts, and the last pilots and actual rates (to
learn an EV's own maximum, which a tapering battery lowers: ``MpcAlgorithm._learn``).
What they return: one pilot per station, recomputed every period (``max_recompute = 1``, as acnportal's
sorted algorithms).

``MpcAlgorithm`` re-plans at every period over a rolling horizon (``ems.optimiser``), each solve started
from the rest of the last plan (the warm start); if the solve fails or finds nothing, it keeps the rest of
its previous plan, which was made against the same limits, and counts a fallback. ``OfflineAlgorithm``
knows every session in advance (arrival, departure, energy) and plays a plan made once over the whole
window: the perfect-foresight upper bound of the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from acnportal.algorithms import BaseAlgorithm

from chargeflow.ems.forecast import ArrivalHistory, Seen
from chargeflow.ems.optimiser import ChargeRequest, Plan, Planner, rolling_boundaries
from chargeflow.ems.phase_hedge import phase_earliness
from chargeflow.ems.phasor import ComplexArray, LinearLimits, linearise, phasor_matrix
from chargeflow.ems.pilots import Pilots, round_to_pilots

FloatArray = Any  # numpy arrays from acnportal carry no dtype information

HORIZON_S = 24 * 3600.0


_MIN_A = 1e-3
#: a draw this far below the pilot is the EV's own maximum (ACN-Sim's rates carry no meter noise)
EXACT_MARGIN_A = 0.05
#: among plans of equal energy, the EV leaving first is served first (``Planner(deadline_order=…)``): it
#: makes the choice among the LP's many equal-energy optima a rule instead of the solver's path
DEADLINE_ORDER = 1.0
#: the weight of earliness (``Planner(earliness=…)``): energy planned a day later is worth 10 % less than
#: energy now. The plan is online: what it leaves for later competes with EVs it cannot see yet, and a
#: stronger discount than the optimiser's default 10⁻³ (a mere tie-break) hedges that. March 2019 at
#: 20 / 30 kW: 77.83 / 92.51 % with 10⁻³, 77.86 / 92.53 % with 0.1, 77.88 / 92.40 % with 0.3; 0.9 lost
#: 0.8 points on the week of 4 March (docs/benchmarks-acn.md).
EARLINESS = 0.1
#: how much of the expected arrivals ``mpc_forecast`` plans for: each expected EV with this share of the
#: history's average energy and current. Chosen on the May–August 2019 Caltech sessions, held out from the
#: March evaluation: at 20 / 30 kW, 0.25 gave 77.49 / 91.63 %, 0.5 77.43 / 91.62 %, 0.75 77.30 / 91.56 %
#: and plain ``mpc`` 77.47 / 91.61 %; the whole forecast (1.0) lost 0.37 point on a March week
#: (docs/benchmarks-acn.md).
FORECAST_WEIGHT = 0.25
#: the phase hedge's strength for ``mpc_phase`` (``ems.phase_hedge``): the EVs of the busiest phase are
#: planned with up to a few times the earliness, those of the quiet phases with less or a slight lateness.
#: Chosen on the Caltech sessions of May 2019, held out from the March evaluation: at 20 kW, ideal
#: battery, 74.40 % with none, then 74.42 / 74.44 / 74.47 / 74.49 / 74.49 / 74.46 / 74.32 / 72.69 % at
#: 1 / 2.5 / 4.5 / 6 / 8 / 11 / 15 / 30 with the phases weighed by their stations, 74.48 % at 6 by the
#: energy asked (the form kept) (docs/benchmarks-acn.md). Off in plain ``mpc``: with tapering
#: batteries it did not pay (May at 20 kW: 71.79 % against 71.84 %).
PHASE_HEDGE = 6.0
#: the size tie-break for ``mpc_complete`` (``Planner(size_order=…)``): among plans of (nearly) equal
#: energy, the EV with least left to charge first. More sessions end complete; with tapering batteries it
#: costs energy (May 2019 at 20 kW: 70.38 % against 71.84 %), so plain ``mpc`` leaves it off.
SIZE_ORDER = 1.0


class _Site:
    """The network as the optimiser needs it, read once from the interface (it does not change)."""

    def __init__(self, interface: Any) -> None:
        info = interface.infrastructure_info()
        self.station_ids: list[str] = list(info.station_ids)
        self.index = {s: i for i, s in enumerate(self.station_ids)}
        self.voltages = np.asarray(info.voltages, dtype=np.float64)
        self.max_pilot = np.asarray(info.max_pilot, dtype=np.float64)
        self.phasors: ComplexArray = phasor_matrix(
            np.asarray(info.constraint_matrix, dtype=np.float64), np.asarray(info.phases, dtype=np.float64)
        )
        self.limits_a = np.asarray(info.constraint_limits, dtype=np.float64)
        self.linear: LinearLimits = linearise(self.phasors, self.limits_a)
        self.levels = [np.asarray(p, dtype=np.float64) for p in info.allowable_pilots]
        self.continuous = np.asarray(info.is_continuous, dtype=bool)
        self.phases_deg = np.asarray(info.phases, dtype=np.float64)

    def pilots(self, stations: list[int]) -> Pilots:
        return Pilots([self.levels[j] for j in stations], self.continuous[stations])

    def a_slots(self, kwh: float, station: int, period_min: float) -> float:
        """Energy in kWh as ampere-slots at the station's voltage."""
        return kwh * 1000.0 / float(self.voltages[station]) * 60.0 / period_min


class MpcAlgorithm(BaseAlgorithm):  # type: ignore[misc]
    """Model-predictive control: re-plan every period, apply the first slot rounded to allowed pilots."""

    def __init__(
        self,
        horizon_s: float = HORIZON_S,
        forecast: bool = False,
        phase_hedge: float = 0.0,
        size_order: float = 0.0,
        oracle: Sequence[Any] | None = None,
    ) -> None:
        super().__init__()
        self.max_recompute = 1
        self._horizon_s = horizon_s
        self._forecast = forecast
        self._phase_hedge = phase_hedge
        self._size_order = size_order
        #: the diagnostic ``mpc_oracle``: every session's true arrival, departure, energy and maximum, so
        #: that what ``mpc`` lacks against ``offline`` can be told apart into information and method
        self._oracle = list(oracle) if oracle is not None else None
        self._asked_kwh: dict[float, float] = {}  # energy asked for per phase angle, of sessions seen
        self._history: ArrivalHistory | None = None
        self._site: _Site | None = None
        self._planner: Planner | None = None
        self._evmax: dict[str, float] = {}
        self._carry: dict[str, float] = {}
        self._keys: dict[str, int] = {}  # a stable integer per session, for the planner's warm start
        self._last: tuple[int, list[str], Plan] | None = None
        self.fallbacks = 0

    def _learn(self, sessions: list[Any]) -> None:
        """Update each EV's maximum from what it drew under the last pilot.

        ACN-Sim reports each EV's exact rate, so an EV that drew less than its pilot is at its maximum (an
        ideal 6.6 kW battery takes 31.7 A of a 32 A pilot); the live CSM's rule (``csm.evmax``) needs a
        1.5 A margin for meter noise and would plan that EV at 32 A, 0.3 A more than it takes, for its
        whole stay. The estimate is never released: ACN-Sim's batteries never take more later than they
        took at their maximum (the ideal one's rate is fixed, the two-stage one only tapers), and a draw
        equal to a pilot at the estimate cannot tell a pressing EV from one at its maximum."""
        pilots = self.interface.last_applied_pilot_signals
        drawn = self.interface.last_actual_charging_rate
        for s in sessions:
            sid = s.session_id
            if sid not in pilots or sid not in drawn:
                continue
            offered, took = float(pilots[sid]), float(drawn[sid])
            if offered > 0 and took < offered - EXACT_MARGIN_A:
                self._evmax[sid] = took

    def schedule(self, active_sessions: list[Any]) -> dict[str, list[float]]:
        iface = self.interface
        period = float(iface.period)
        now = int(iface.current_time)
        if self._site is None:
            self._site = _Site(iface)
            self._planner = Planner(
                slots_per_day=24 * 60 / period,
                earliness=EARLINESS,
                deadline_order=DEADLINE_ORDER,
                size_order=self._size_order,
            )
            origin = iface.current_datetime - timedelta(minutes=now * period)
            self._history = ArrivalHistory(round(24 * 60 / period), origin.weekday())
        site, planner, history = self._site, self._planner, self._history
        assert planner is not None
        assert history is not None
        self._learn(active_sessions)
        sessions, stations, energy, end, max_a = [], [], [], [], []
        for s in active_sessions:
            j = site.index[s.station_id]
            e = site.a_slots(float(s.remaining_demand), j, period)
            if e <= _MIN_A:
                continue
            learned = self._evmax.get(s.session_id)
            stay = int(s.estimated_departure) - int(s.arrival)
            wanted = site.a_slots(float(s.requested_energy), j, period)
            if history.record(s.session_id, Seen(j, int(s.arrival), stay, wanted, float(site.max_pilot[j]))):
                phase = float(site.phases_deg[j])
                self._asked_kwh[phase] = self._asked_kwh.get(phase, 0.0) + float(s.requested_energy)
            sessions.append(s)
            stations.append(j)
            energy.append(e)
            end.append(max(int(s.estimated_departure) - now, 1))
            max_a.append(min(float(site.max_pilot[j]), learned if learned is not None else np.inf))
        schedule = {sid: [0.0] for sid in site.station_ids}
        if not sessions:
            return schedule
        horizon = max(1, int(self._horizon_s / 60.0 / period))
        n_slots = min(max(end), horizon)
        n = len(stations)
        start = [0] * n
        weight = FORECAST_WEIGHT
        if self._oracle is not None:
            expected, weight = self._known(now, n_slots, period), 1.0
        elif self._forecast:
            expected = history.expected(now, n_slots)
        else:
            expected = []
        for j, e, a, d, m in expected:
            if 0 < a < n_slots:
                stations.append(j)
                energy.append(e * weight)
                start.append(a)
                end.append(d)
                max_a.append(m * weight)
        if self._oracle is not None:
            # The known EVs that arrive while present ones are here may stay past the last present one's
            # departure: plan to their ends (at most two days), or their stays would be cut short and
            # their energy pushed early, against the present EVs.
            n_slots = min(max(end), 2 * horizon)
        request = ChargeRequest(
            station=np.asarray(stations, dtype=np.int64),
            energy_a_slots=np.asarray(energy),
            start_slot=np.asarray(start, dtype=np.int64),
            end_slot=np.minimum(np.asarray(end, dtype=np.int64), n_slots),
            max_a=np.asarray(max_a),
            earliness_scale=phase_earliness(
                site.phases_deg[stations], site.phases_deg, self._asked_kwh, self._phase_hedge
            )
            if self._phase_hedge
            else None,
        )
        ids = [s.session_id for s in sessions]
        keys = [self._keys.setdefault(sid, len(self._keys)) for sid in ids]
        keys += [len(self._keys) + k for k in range(len(stations) - n)]  # expected arrivals: new each time
        plan = planner.solve(
            site.linear,
            request,
            rolling_boundaries(n_slots, origin_slot=now),
            keys=np.asarray(keys, dtype=np.int64),
            origin_slot=now,
        )
        stations = stations[:n]
        if plan.ok:
            target = plan.first_a[:n]
            self._last = (now, ids, plan)
        else:
            self.fallbacks += 1
            target = self._fallback(now, ids)
        carry = np.asarray([self._carry.get(i, 0.0) for i in ids])
        rates = round_to_pilots(
            target, carry, request.max_a[:n], site.pilots(stations), site.phasors[:, stations], site.limits_a
        )
        for k, sid in enumerate(ids):
            self._carry[sid] = max(float(carry[k] + target[k] - rates[k]), 0.0)
            schedule[site.station_ids[stations[k]]] = [float(rates[k])]
        return schedule

    def _known(self, now: int, n_slots: int, period: float) -> list[tuple[int, float, int, int, float]]:
        """The true sessions arriving after ``now`` within ``n_slots``, as ``ArrivalHistory.expected``
        gives its forecast: (station, energy in ampere-slots, start, end, maximum current)."""
        site = self._site
        assert site is not None
        assert self._oracle is not None
        out = []
        for ev in self._oracle:
            a = int(ev.arrival) - now
            if 0 < a < n_slots:
                j = site.index[ev.station_id]
                most = min(float(site.max_pilot[j]), ev.maximum_charging_power * 1000.0 / site.voltages[j])
                out.append(
                    (j, site.a_slots(float(ev.requested_energy), j, period), a, int(ev.departure) - now, most)
                )
        return out

    def _fallback(self, now: int, ids: list[str]) -> FloatArray:
        """The previous plan's rates for this slot: feasible, as it was planned against the same limits."""
        target = np.zeros(len(ids))
        if self._last is None:
            return target
        then, old_ids, plan = self._last
        slots = plan.slot_rates_a()
        k = now - then
        if 0 <= k < slots.shape[1]:
            where = {sid: i for i, sid in enumerate(old_ids)}
            for i, sid in enumerate(ids):
                if sid in where:
                    target[i] = slots[where[sid], k]
        return target


class OfflineAlgorithm(BaseAlgorithm):  # type: ignore[misc]
    """Perfect foresight: one plan over the whole window, from every session's true arrival, departure and
    energy and the EV's true maximum rate; the periods between sessions split it into independent LPs."""

    def __init__(self, evs: list[Any]) -> None:
        super().__init__()
        self.max_recompute = 1
        self._evs = evs
        self._rates: dict[str, FloatArray] = {}
        self._site: _Site | None = None
        self._carry: dict[str, float] = {}
        self.status: list[str] = []

    def _solve(self) -> None:
        iface = self.interface
        period = float(iface.period)
        site = self._site = _Site(iface)
        planner = Planner(slots_per_day=24 * 60 / period, time_limit_s=600.0)
        evs = sorted(self._evs, key=lambda ev: ev.arrival)
        groups: list[list[Any]] = []
        reach = -1
        for ev in evs:
            if ev.arrival >= reach:
                groups.append([])
            groups[-1].append(ev)
            reach = max(reach, ev.departure)
        for group in groups:
            t0 = min(ev.arrival for ev in group)
            t1 = max(ev.departure for ev in group)
            stations = np.asarray([site.index[ev.station_id] for ev in group], dtype=np.int64)
            ev_max = [
                ev.maximum_charging_power * 1000.0 / site.voltages[j]
                for ev, j in zip(group, stations, strict=True)
            ]
            request = ChargeRequest(
                station=stations,
                energy_a_slots=np.asarray(
                    [
                        site.a_slots(ev.requested_energy, j, period)
                        for ev, j in zip(group, stations, strict=True)
                    ]
                ),
                start_slot=np.asarray([ev.arrival - t0 for ev in group], dtype=np.int64),
                end_slot=np.asarray([ev.departure - t0 for ev in group], dtype=np.int64),
                max_a=np.minimum(site.max_pilot[stations], np.asarray(ev_max)),
            )
            plan = planner.solve(site.linear, request, np.arange(t1 - t0 + 1, dtype=np.int64))
            self.status.append(plan.status)
            slots = plan.slot_rates_a()
            for i, ev in enumerate(group):
                rates = np.zeros(t1 - t0 + 1)
                rates[: slots.shape[1]] = slots[i]
                self._rates[ev.session_id] = (t0, rates)

    def schedule(self, active_sessions: list[Any]) -> dict[str, list[float]]:
        if self._site is None:
            self._solve()
        site = self._site
        assert site is not None
        now = int(self.interface.current_time)
        schedule = {sid: [0.0] for sid in site.station_ids}
        ids, stations, target = [], [], []
        for s in active_sessions:
            if s.session_id not in self._rates:
                continue
            t0, rates = self._rates[s.session_id]
            k = now - t0
            ids.append(s.session_id)
            stations.append(site.index[s.station_id])
            target.append(float(rates[k]) if 0 <= k < rates.size else 0.0)
        if not ids:
            return schedule
        tgt = np.asarray(target)
        carry = np.asarray([self._carry.get(i, 0.0) for i in ids])
        rates_now = round_to_pilots(
            tgt,
            carry,
            site.max_pilot[stations],
            site.pilots(stations),
            site.phasors[:, stations],
            site.limits_a,
        )
        for k, sid in enumerate(ids):
            self._carry[sid] = max(float(carry[k] + tgt[k] - rates_now[k]), 0.0)
            schedule[site.station_ids[stations[k]]] = [float(rates_now[k])]
        return schedule

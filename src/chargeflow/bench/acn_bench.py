"""``chargeflow bench acn``: our optimiser beside acnportal's algorithms, inside ACN-Sim, on the same events.

The workload is an ACN-Sim event queue (the March 2019 Caltech queue of the ACN-Sim paper) or a table of
ACN-Data sessions converted to one. The site is acnportal's own Caltech network (``caltech_acn``: 54
stations, a delta–wye transformer whose line currents are checked as phasors) with the transformer limited
to each capacity. Battery ``ideal`` keeps the queue's batteries; ``taper`` replaces each with acnportal's
two-stage battery sized by its ``batt_cap_fn`` (the battery tapers for as long as the session still
allows the requested energy at full rate), as in the ACN papers' practical-model experiments. Steps
``continuous`` use acnportal's BASIC stations (any current up to 32 A); ``discrete`` its AeroVironment and
ClipperCreek models (6–32 A in 1 A steps; 8, 16, 24, 32 A).

Metrics come from ``acnportal.acnsim.analysis``; violations are counted with the network's own phasor
check on the pilots every algorithm sent; the time per step is acnportal's own ``solve_stats`` of each
algorithm, measured in the same run for all of them.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from chargeflow.bench.acn_algorithms import PHASE_HEDGE, SIZE_ORDER, MpcAlgorithm, OfflineAlgorithm
from chargeflow.ems.forecast import ArrivalHistory, ForecastError, Seen, forecast_error

PERIOD_MIN = 5
VOLTAGE_V = 208.0
CALTECH_TZ = ZoneInfo("America/Los_Angeles")
MARCH_2019 = datetime(2019, 3, 1, tzinfo=CALTECH_TZ)  # time 0 of the shared March 2019 event queue
SITES = ("caltech", "jpl")
JPL_SHARE = (45.0 / 195.0, 150.0 / 195.0)  # of the capacity, for JPL's two transformers

OURS = ("mpc", "offline")
THEIRS = ("uncontrolled", "edf", "llf", "round_robin")
ALGORITHMS = (*OURS, *THEIRS)
#: run only when named: the MPC with expected arrivals from the site's history (``ems.forecast``), with
#: the phase hedge (``ems.phase_hedge``), with the size tie-break (more sessions complete), and the
#: diagnostic oracle that knows every session in advance (not a method: what information is worth)
EXTRA = ("mpc_forecast", "mpc_phase", "mpc_complete", "mpc_oracle")


@dataclass(frozen=True, slots=True)
class AcnRecord:
    capacity_kw: float
    algorithm: str
    energy_delivered_pct: float
    demands_fully_met_pct: float
    peak_kw: float
    ms_per_step_median: float
    ms_per_step_p95: float
    violations: int  # (constraint, period) pairs over the limit in acnportal's check of the pilots
    steps: int
    fallbacks: int


def load_queue(path: Path) -> Any:
    from acnportal import acnsim

    with gzip.open(path, "rt") as f:
        data = json.load(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shared queue was written by acnportal 0.2.1 under numpy 1
        return acnsim.EventQueue.from_json(data)


def evs_of(queue: Any) -> list[Any]:
    from acnportal import acnsim

    return [e.ev for _, e in queue.queue if isinstance(e, acnsim.PluginEvent)]


def window(evs: Sequence[Any], start_slot: int, n_slots: int | None) -> list[Any]:
    """The sessions that arrive within [start_slot, start_slot + n_slots), shifted to start at 0."""
    out = []
    for ev in evs:
        if ev.arrival < start_slot or (n_slots is not None and ev.arrival >= start_slot + n_slots):
            continue
        ev = copy.deepcopy(ev)
        ev._arrival -= start_slot
        ev._departure -= start_slot
        ev._estimated_departure -= start_slot
        out.append(ev)
    return out


def tapered(evs: Sequence[Any]) -> list[Any]:
    """The same sessions with acnportal's two-stage (tapering) battery sized by its ``batt_cap_fn``.

    A session that asked for more than 32 A could deliver in its stay has no such battery; its request is
    cut to what 32 A delivers, as acnportal's ``force_feasible`` does for the papers' taper experiments (the
    same cut for every algorithm).
    """
    from acnportal import acnsim
    from acnportal.acnsim.models.battery import batt_cap_fn

    out = []
    for ev in evs:
        ev = copy.deepcopy(ev)
        stay = ev.departure - ev.arrival
        most_kwh = 32 * VOLTAGE_V / 1000 * stay * PERIOD_MIN / 60
        for energy in (ev.requested_energy, min(ev.requested_energy, 0.98 * most_kwh)):
            try:
                cap, init = batt_cap_fn(energy, stay, VOLTAGE_V, PERIOD_MIN)
            except ValueError:
                continue
            ev._requested_energy = energy
            ev._battery = acnsim.Linear2StageBattery(cap, init, ev.maximum_charging_power)
            break
        out.append(ev)
    return out


def queue_of(evs: Sequence[Any]) -> Any:
    from acnportal import acnsim

    events: list[Any] = []
    for ev in evs:
        events.append(acnsim.PluginEvent(ev.arrival, ev))
        events.append(acnsim.UnplugEvent(ev.departure, ev))
    return acnsim.EventQueue(events)


def _algorithm(name: str, evs: Sequence[Any]) -> Any:
    from acnportal import algorithms as alg

    makers: dict[str, Callable[[], Any]] = {
        "mpc": MpcAlgorithm,
        "mpc_forecast": lambda: MpcAlgorithm(forecast=True),
        "mpc_phase": lambda: MpcAlgorithm(phase_hedge=PHASE_HEDGE),
        "mpc_complete": lambda: MpcAlgorithm(size_order=SIZE_ORDER),
        "mpc_oracle": lambda: MpcAlgorithm(oracle=list(evs)),
        "offline": lambda: OfflineAlgorithm(list(evs)),
        "uncontrolled": alg.UncontrolledCharging,
        "edf": lambda: alg.SortedSchedulingAlgo(alg.earliest_deadline_first),
        "llf": lambda: alg.SortedSchedulingAlgo(alg.least_laxity_first),
        "round_robin": lambda: alg.RoundRobin(alg.first_come_first_served),
    }
    return makers[name]()


def violations(sim: Any) -> int:
    net = sim.network
    currents = np.abs(net.constraint_current(sim.pilot_signals))
    limit = net.magnitudes + np.maximum(net.violation_tolerance, net.magnitudes * net.relative_tolerance)
    return int((currents > limit[:, None]).sum())


def network_of(site: str, capacity_kw: float | None = None, discrete: bool = False) -> Any:
    """acnportal's model of the site. Caltech has one transformer, limited to ``capacity_kw``; JPL has two
    (45 kW for the first floor, 150 kW for the third and fourth), each limited to its share of
    ``capacity_kw`` (45/195 and 150/195 of it). ``None``: acnportal's own ratings."""
    from acnportal import acnsim

    if site == "jpl":
        first = 45.0 if capacity_kw is None else capacity_kw * JPL_SHARE[0]
        upper = 150.0 if capacity_kw is None else capacity_kw * JPL_SHARE[1]
        return acnsim.sites.jpl_acn(
            basic_evse=not discrete,
            voltage=VOLTAGE_V,
            first_transformer_cap=first,
            third_fourth_transformer_cap=upper,
        )
    if site != "caltech":
        raise ValueError(f"unknown site {site!r}: {', '.join(SITES)}")
    return acnsim.sites.caltech_acn(
        basic_evse=not discrete, voltage=VOLTAGE_V, transformer_cap=capacity_kw or 150.0
    )


def run_one(
    name: str,
    evs: Sequence[Any],
    capacity_kw: float,
    discrete: bool,
    start: datetime = MARCH_2019,
    site: str = "caltech",
    steps: Callable[[int, int], None] | None = None,
) -> AcnRecord:
    """One algorithm at one capacity; ``steps(done, total)`` is told the periods simulated, once a
    simulated day and at the end."""
    from acnportal import acnsim
    from acnportal.acnsim import analysis

    network = network_of(site, capacity_kw, discrete)
    own = [copy.deepcopy(ev) for ev in evs]
    algorithm = _algorithm(name, own)
    sim = acnsim.Simulator(network, algorithm, queue_of(own), start, period=PERIOD_MIN, verbose=False)
    if steps is not None:
        total = max((int(ev.departure) for ev in own), default=0)
        schedule = algorithm.run

        def run_and_count() -> Any:
            done = int(sim.iteration)
            if done % (24 * 60 // PERIOD_MIN) == 0:
                steps(done, total)
            return schedule()

        algorithm.run = run_and_count
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # acnportal warns on every infeasible schedule; counted below instead
        sim.run()
    times = sorted(1000.0 * s["solve_time"] for s in algorithm.solve_stats) or [0.0]
    record = AcnRecord(
        capacity_kw=capacity_kw,
        algorithm=name,
        energy_delivered_pct=round(100.0 * float(analysis.proportion_of_energy_delivered(sim)), 2),
        demands_fully_met_pct=round(100.0 * float(analysis.proportion_of_demands_met(sim)), 2),
        peak_kw=round(float(np.max(analysis.aggregate_power(sim), initial=0.0)), 2),
        ms_per_step_median=round(statistics.median(times), 3),
        ms_per_step_p95=round(times[min(len(times) - 1, int(0.95 * len(times)))], 3),
        violations=violations(sim),
        steps=len(algorithm.solve_stats),
        fallbacks=int(getattr(algorithm, "fallbacks", 0)),
    )
    if steps is not None:
        steps(total, total)
    return record


def start_slot(day: datetime, origin: datetime = MARCH_2019) -> int:
    return int((day - origin) / timedelta(minutes=PERIOD_MIN))


def bench_acn(
    evs: Sequence[Any],
    capacities_kw: Sequence[float],
    algorithms: Sequence[str] = ALGORITHMS,
    taper: bool = False,
    discrete: bool = False,
    start: datetime = MARCH_2019,
    progress: Callable[[AcnRecord], None] | None = None,
    site: str = "caltech",
    steps: Callable[[float, str, int, int], None] | None = None,
) -> list[AcnRecord]:
    """Every algorithm at every capacity; ``progress`` gets each record as it is done, ``steps(capacity,
    algorithm, done, total)`` the periods simulated of the run under way (``run_one``)."""
    evs = tapered(evs) if taper else list(evs)
    records = []
    for cap in capacities_kw:
        for name in algorithms:
            counted = None if steps is None else functools.partial(steps, cap, name)
            record = run_one(name, evs, cap, discrete, start, site, counted)
            records.append(record)
            if progress is not None:
                progress(record)
    return records


@dataclass(frozen=True, slots=True)
class ArrivalForecastErrors:
    """The error of ``mpc_forecast``'s arrivals forecast (``ems.forecast``), hour by hour of each day after
    the first: energy arriving [kWh per hour] and sessions arriving [per hour]."""

    energy_kwh: ForecastError
    sessions: ForecastError


def arrival_forecast_errors(evs: Sequence[Any], start: datetime) -> ArrivalForecastErrors:
    """Replay the window day by day: at each local midnight, what the history of the days before expects
    to arrive in each hour of the day against what did arrive (the forecast ``mpc_forecast`` adds to the
    plan, made once a day here instead of every period)."""
    per_day = 24 * 60 // PERIOD_MIN
    per_hour = 60 // PERIOD_MIN
    history = ArrivalHistory(per_day, start.weekday())
    by_day: dict[int, list[Any]] = {}
    for ev in evs:
        by_day.setdefault(ev.arrival // per_day, []).append(ev)
    days = max(by_day, default=-1) + 1
    kwh_f: list[float] = []
    kwh_a: list[float] = []
    n_f: list[float] = []
    n_a: list[float] = []
    for day in range(days):
        if day > 0:
            energy = [0.0] * 24
            count = [0.0] * 24
            # (``expected`` leaves out what would arrive at ``now`` itself, here the stroke of midnight)
            for _, kwh, begin, _, share in history.expected(day * per_day, per_day):
                hour = begin // per_hour
                if 0 <= hour < 24:
                    energy[hour] += kwh
                    count[hour] += share  # each expected EV carries 1/n of one session
            real_e = [0.0] * 24
            real_n = [0.0] * 24
            for ev in by_day.get(day, []):
                hour = (ev.arrival - day * per_day) // per_hour
                real_e[hour] += float(ev.requested_energy)
                real_n[hour] += 1.0
            kwh_f += energy
            kwh_a += real_e
            n_f += count
            n_a += real_n
        for ev in by_day.get(day, []):
            # Energy in kWh and a "current" of 1 per session, so that the expected ones add up to counts.
            history.record(
                ev.session_id, Seen(0, ev.arrival, ev.departure - ev.arrival, ev.requested_energy, 1.0)
            )
    return ArrivalForecastErrors(forecast_error(kwh_f, kwh_a), forecast_error(n_f, n_a))

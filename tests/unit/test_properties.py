"""Invariants of one control step over random sites and sessions (hypothesis).

The checks recompute everything from the inputs with their own arithmetic: the per-phase load of every
circuit, the grid power, the ESS energy, and — as an independent oracle — each EV's need from the formula
of TF-EVC ChPr as written in ``csm.demand``'s docstring, in plain scalar Python.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargeflow.control.allocate import StepInput, StepResult, control_step
from chargeflow.csm.demand import EvSession, Preferences
from chargeflow.csm.split import Strategy
from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import Circuit, Ess, GridConnection, Site
from chargeflow.site.tree import check_site
from chargeflow.units import grid_phases_of

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
V = 230.0
TOL = 1e-6


@st.composite
def steps(draw: st.DrawFn) -> StepInput:
    n_circuits = draw(st.integers(1, 6))
    circuits = [Circuit("c0", None, tuple(draw(st.floats(16, 160)) for _ in range(3)))]  # type: ignore[arg-type]
    for i in range(1, n_circuits):
        parent = f"c{draw(st.integers(0, i - 1))}"
        fuse = tuple(draw(st.floats(10, 100)) for _ in range(3))
        circuits.append(Circuit(f"c{i}", parent, fuse))  # type: ignore[arg-type]
    sessions = []
    for j in range(draw(st.integers(0, 12))):
        needed = draw(st.integers(0, 40_000))
        min_a = draw(st.sampled_from((6.0, 6.0, 0.0)))
        sessions.append(
            EvSession(
                id=f"ev{j}",
                circuit=f"c{draw(st.integers(0, n_circuits - 1))}",
                phases=draw(st.sampled_from((1, 3, 3, 2))),
                l1_phase=draw(st.integers(1, 3)),
                min_current_a=min_a,
                station_max_current_a=draw(st.sampled_from((10.0, 16.0, 32.0))),
                preferences=Preferences(
                    needed,
                    needed + draw(st.integers(0, 40_000)),
                    NOW + timedelta(minutes=draw(st.integers(-30, 600))),
                    draw(st.sampled_from((None, Decimal("0.2"), Decimal("0.4")))),
                    draw(st.sampled_from((None, Decimal("0.1"), Decimal("0.3")))),
                ),
                charged_wh=draw(st.integers(0, 45_000)),
                ev_max_current_a=draw(st.sampled_from((None, None, 5.0, 13.0, 16.0))),
                priority=draw(st.integers(0, 3)),
            )
        )
    ess = None
    state = None
    if draw(st.booleans()):
        capacity = draw(st.integers(5_000, 100_000))
        min_wh = draw(st.integers(0, capacity))
        ess = Ess(
            f"c{draw(st.integers(0, n_circuits - 1))}",
            capacity,
            min_wh,
            draw(st.floats(0, 20_000)),
            draw(st.floats(0, 20_000)),
        )
        state = EssState(draw(st.floats(min_wh, capacity)))
    site = Site(
        id="prop",
        grid=GridConnection(draw(st.floats(0, 100_000)), draw(st.floats(0, 50_000))),
        circuits=tuple(circuits),
        building_circuit=f"c{draw(st.integers(0, n_circuits - 1))}",
        ess=ess,
    )
    return StepInput(
        site=site,
        now=NOW,
        step_s=draw(st.sampled_from((10.0, 60.0, 900.0))),
        building=BuildingPower(draw(st.floats(0, 80_000)), draw(st.floats(0, 60_000))),
        sessions=tuple(sessions),
        strategy=draw(st.sampled_from(list(Strategy))),
        ess_state=state,
        price_per_kwh=draw(st.sampled_from((None, Decimal("0.15"), Decimal("0.35")))),
    )


def oracle_need_a(s: EvSession, step: StepInput) -> float:
    """The need of one EV, in A per phase, straight from the formula."""
    p = s.preferences
    max_a = (
        s.station_max_current_a
        if s.ev_max_current_a is None
        else min(s.station_max_current_a, s.ev_max_current_a)
    )
    if max_a < s.min_current_a or max_a <= 0:
        return 0.0
    max_w = max_a * s.phases * V
    rest_wh = max(p.needed_wh - s.charged_wh, 0)
    t_s = (p.departure - step.now).total_seconds()
    need_w = min(max((rest_wh - max_w * max(t_s - step.step_s, 0) / 3600) * 3600 / step.step_s, 0.0), max_w)
    need_a = min(math.ceil(need_w / (s.phases * V) * 10 - 1e-6) / 10, max_a)
    return max(need_a, s.min_current_a) if need_a > 0 else 0.0


def phase_loads(
    step: StepInput, result: StepResult, currents: dict[str, float]
) -> dict[tuple[str, int], float]:
    """Current on every circuit and phase: building consumption, EVs, and the ESS when it charges."""
    parent = {c.id: c.parent for c in step.site.circuits}
    loads = {(c.id, p): 0.0 for c in step.site.circuits for p in (1, 2, 3)}

    def add(circuit: str | None, phases: tuple[int, ...], amps: float) -> None:
        while circuit is not None:
            for ph in phases:
                loads[circuit, ph] += amps
            circuit = parent[circuit]

    add(step.site.building_circuit, (1, 2, 3), step.building.consumption_w / (3 * V))
    for s in step.sessions:
        add(s.circuit, grid_phases_of(s.phases, s.l1_phase), currents[s.id])
    if step.site.ess is not None and result.ess_discharge_w < 0:
        add(step.site.ess.circuit, (1, 2, 3), -result.ess_discharge_w / (3 * V))
    return loads


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps())
def test_control_step_keeps_every_limit(step: StepInput) -> None:
    result = control_step(step)
    site = step.site
    currents = {lim.id: lim.current_a for lim in result.limits}
    by_id = {s.id: s for s in step.sessions}

    # every station at 0 or within [min, min(station max, EV max)]  (eq. 1.1.1.1)
    for lim in result.limits:
        s = by_id[lim.id]
        top = (
            s.station_max_current_a
            if s.ev_max_current_a is None
            else min(s.station_max_current_a, s.ev_max_current_a)
        )
        assert lim.current_a == 0 or s.min_current_a - TOL <= lim.current_a <= top + TOL, lim
        assert abs(lim.power_w - lim.current_a * s.phases * V) < 1e-6

    # no circuit, no phase over its fuse  (eq. 3.2.5.1), where the building alone does not break it already
    fuses = {(c.id, p): c.fuse_a[p - 1] for c in site.circuits for p in (1, 2, 3)}
    no_ev = phase_loads(step, result, dict.fromkeys(currents, 0.0))
    for key, amps in phase_loads(step, result, currents).items():
        assert amps <= max(fuses[key], no_ev[key]) + 1e-6, key
        if no_ev[key] > fuses[key]:
            assert amps == no_ev[key], key  # nothing is added to a phase that is already over

    # Σ EV power ≤ P_granted, and P_needed ≤ P_granted ≤ P_wished when feasible  (eq. 3.2.6.1)
    assert result.ev_w <= result.granted_w + 1e-6
    assert result.granted_w <= result.wished_w + 1e-6

    # grid within both limits  (eq. 3.2.6.2), unless the building alone is beyond what the ESS can help
    ess_max = 0.0
    if site.ess is not None and step.ess_state is not None:
        above_wh = step.ess_state.stored_wh - site.ess.min_wh
        ess_max = min(site.ess.max_discharge_w, above_wh * 3600 / step.step_s)
    grid_w = step.building.net_w + result.ev_w - result.ess_discharge_w
    assert abs(grid_w - result.grid_w) < 1e-6
    if result.ev_w > 0:
        assert grid_w <= site.grid.max_import_w + 1e-6
    else:
        assert grid_w <= max(site.grid.max_import_w, step.building.net_w - ess_max) + 1e-6
    if grid_w < -site.grid.max_export_w - 1e-6:
        assert result.ess_reason == "export_over_limit"

    # ESS within its power and energy limits  (eq. 3.2.6.3–4)
    if site.ess is not None and step.ess_state is not None:
        after_wh = step.ess_state.stored_wh - result.ess_discharge_w * step.step_s / 3600
        assert after_wh >= site.ess.min_wh - 1e-6
        assert site.ess.capacity_wh is None or after_wh <= site.ess.capacity_wh + 1e-6
        assert -site.ess.max_charge_w - 1e-6 <= result.ess_discharge_w <= site.ess.max_discharge_w + 1e-6
    else:
        assert result.ess_discharge_w == 0

    # needs met whenever they are feasible: the needs fit every fuse, and the grid with the ESS's help
    needs = {s.id: oracle_need_a(s, step) for s in step.sessions}
    needed_w = sum(needs[s.id] * s.phases * V for s in step.sessions)
    assert abs(needed_w - result.needed_w) < 1e-3
    room_w = site.grid.max_import_w - step.building.net_w + ess_max
    fits_fuses = all(a <= fuses[k] + 1e-9 for k, a in phase_loads(step, result, needs).items())
    if fits_fuses and needed_w <= room_w - 1e-6:
        assert result.feasible
        for lim in result.limits:
            assert lim.current_a >= needs[lim.id] - 1e-9, (lim, needs[lim.id])
    if result.feasible:
        assert all(lim.need_met for lim in result.limits)
        assert result.granted_w >= result.needed_w - 1e-6


@settings(max_examples=200, deadline=None)
@given(steps())
def test_every_limit_below_its_wish_says_why(step: StepInput) -> None:
    result = control_step(step)
    tree = check_site(step.site)
    names = {tree.constraint_name(k) for k in range(3 * len(tree.circuits))}
    known = names | {
        result.grant_reason,
        "station_max",
        "ev_max",
        "energy_reached",
        "price_cap",
        "ev_below_station_min",
    }
    for lim in result.limits:
        assert lim.reason in known, lim

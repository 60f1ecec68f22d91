"""The simulator with the site plan: a day of the small test site with a battery and hourly prices."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from chargeflow.sim.data import PriceSeries
from chargeflow.sim.headless import StepRow, simulate
from tests.unit.test_sim_headless import DAY, config, sessions, site

# Cheap from midnight to 06:00 UTC, dear for the rest of the day.
PRICES = PriceSeries(
    {(DAY.month, DAY.day, h): Decimal("0.05") if h < 6 else Decimal("0.40") for h in range(24)},
    Decimal("0.40"),
)


def test_the_site_plan_buys_in_the_cheap_hours_and_keeps_every_limit() -> None:
    base = config("edf", site=site(ess=True), step_s=300, prices=PRICES, end=DAY + timedelta(days=1))
    rule_rows: list[StepRow] = []
    plan_rows: list[StepRow] = []
    rule = simulate(base, sessions(), on_step=rule_rows.append)
    plan = simulate(replace(base, site_plan=True), sessions(), on_step=plan_rows.append)
    assert rule.limit_violations == plan.limit_violations == 0
    assert plan.site_plan_solves > 0
    assert plan.site_plan_fallbacks == 0
    # Without PV the rule never charges the battery; the plan fills it in the cheap night hours and empties it
    # in the dear ones, and the bill is lower for the same needs met.
    assert not any(r.ess_w < 0 for r in rule_rows)
    night = [r for r in plan_rows if r.time < DAY + timedelta(hours=6)]
    assert sum(-r.ess_w for r in night) * 300 / 3600 > 20_000  # over 20 kWh bought at 0.05
    assert any(r.ess_w > 0 for r in plan_rows if r.time >= DAY + timedelta(hours=6))
    assert plan.energy_cost < rule.energy_cost
    paid = float(plan.energy_cost) / plan.grid_import_kwh  # not only less energy: each kWh is cheaper
    assert paid < float(rule.energy_cost) / rule.grid_import_kwh
    assert plan.needs_met_pct >= rule.needs_met_pct
    assert plan.forecast_errors is not None
    assert plan.forecast_errors["building"]["1h"]["slots"] > 80

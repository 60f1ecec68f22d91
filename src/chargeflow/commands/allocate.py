"""``chargeflow allocate``: one control step from a JSON description, as a tool and as a test contract.

Input and output are documented in docs/allocate.md. Invalid input gets a message naming the field and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, Field, ValidationError, model_validator

from chargeflow.commands.native_output import native_stdout_to_stderr
from chargeflow.control.allocate import StepInput, StepResult, control_step
from chargeflow.control.allocate_mpc import MpcPlanner
from chargeflow.csm.demand import EvSession, Preferences
from chargeflow.csm.split import Strategy
from chargeflow.site.config import (
    ChargingPointConfig,
    CircuitConfig,
    ConfigError,
    EssConfig,
    GridConfig,
    Model,
    NonNegative,
    Positive,
    format_validation_error,
    root_circuit,
)
from chargeflow.site.measurement import BuildingPower, EssState
from chargeflow.site.model import Site
from chargeflow.site.tree import SiteError, check_site
from chargeflow.units import NOMINAL_VOLTAGE_V


class BuildingIn(Model):
    """Either consumption and generation (TF-EVC P_used, P_gen), or the smart meter's net power alone
    together with the EV and ESS power measured at the same moment."""

    circuit: str | None = None
    consumption_w: NonNegative | None = None
    generation_w: NonNegative = 0.0
    net_meter_w: float | None = None
    ev_w: NonNegative = 0.0
    ess_discharge_w: float = 0.0

    @model_validator(mode="after")
    def _one_variant(self) -> Self:
        if (self.consumption_w is None) == (self.net_meter_w is None):
            raise ValueError("give either consumption_w (and generation_w) or net_meter_w")
        return self

    def power(self) -> BuildingPower:
        if self.consumption_w is not None:
            return BuildingPower(self.consumption_w, self.generation_w)
        assert self.net_meter_w is not None
        return BuildingPower.from_net_meter(self.net_meter_w, self.ev_w, self.ess_discharge_w)


class EssIn(EssConfig):
    """The battery and its state; without ``capacity_wh`` it is taken as never full."""

    stored_wh: NonNegative
    capacity_wh: Annotated[int, Field(gt=0)] | None = None  # type: ignore[assignment]
    max_charge_w: NonNegative = 0.0


class EvIn(ChargingPointConfig):
    """An EV and the charging point it is connected to."""

    ev_max_current_a: NonNegative | None = None
    needed_wh: Annotated[int, Field(ge=0)]
    wished_wh: Annotated[int, Field(ge=0)]
    charged_wh: Annotated[int, Field(ge=0)] = 0
    departure: AwareDatetime
    price_cap_needed_per_kwh: Decimal | None = None
    price_cap_wished_per_kwh: Decimal | None = None
    priority: int = 0

    @model_validator(mode="after")
    def _wish_covers_need(self) -> Self:
        if self.wished_wh < self.needed_wh:
            raise ValueError(f"wished_wh ({self.wished_wh}) must be at least needed_wh ({self.needed_wh})")
        return self


class StepIn(Model):
    now: AwareDatetime
    step_s: Positive = 60.0
    voltage_v: Positive = NOMINAL_VOLTAGE_V
    grid: GridConfig
    circuits: list[CircuitConfig] = Field(min_length=1)
    building: BuildingIn = Field(default_factory=lambda: BuildingIn(consumption_w=0.0))
    ess: EssIn | None = None
    evs: list[EvIn] = Field(default_factory=list)
    strategy: Strategy = Strategy.EDF
    price_per_kwh: Decimal | None = None

    def to_step(self) -> StepInput:
        site = Site(
            id="allocate",
            grid=self.grid.to_grid(),
            circuits=tuple(c.to_circuit() for c in self.circuits),
            charging_points=tuple(ev.to_point() for ev in self.evs),
            building_circuit=self.building.circuit,
            ess=self.ess.to_ess(root_circuit(self.circuits)) if self.ess else None,
            voltage_v=self.voltage_v,
        )
        check_site(site, charging_points_path="evs")
        sessions = tuple(
            EvSession.at(
                point,
                Preferences(
                    ev.needed_wh,
                    ev.wished_wh,
                    ev.departure,
                    ev.price_cap_needed_per_kwh,
                    ev.price_cap_wished_per_kwh,
                ),
                charged_wh=ev.charged_wh,
                ev_max_current_a=ev.ev_max_current_a,
                priority=ev.priority,
            )
            for point, ev in zip(site.charging_points, self.evs, strict=True)
        )
        return StepInput(
            site=site,
            now=self.now,
            step_s=self.step_s,
            building=self.building.power(),
            sessions=sessions,
            strategy=self.strategy,
            ess_state=EssState(self.ess.stored_wh) if self.ess else None,
            price_per_kwh=self.price_per_kwh,
        )


def parse_step(data: Any, source: str = "input") -> StepInput:
    try:
        return StepIn.model_validate(data).to_step()
    except ValidationError as err:
        raise ConfigError(format_validation_error(source, err)) from None
    except SiteError as err:
        raise ConfigError(f"{source}: {err}") from None


def result_json(result: StepResult) -> dict[str, Any]:
    return {
        "needed_w": round(result.needed_w, 1),
        "wished_w": round(result.wished_w, 1),
        "granted_w": round(result.granted_w, 1),
        "grant_reason": result.grant_reason,
        "ev_w": round(result.ev_w, 1),
        "ess_discharge_w": round(result.ess_discharge_w, 1),
        "ess_reason": result.ess_reason,
        "grid_w": round(result.grid_w, 1),
        "feasible": result.feasible,
        "evs": [
            {
                "id": lim.id,
                "current_a": lim.current_a,
                "power_w": round(lim.power_w, 1),
                "reason": lim.reason,
                "need_met": lim.need_met,
            }
            for lim in result.limits
        ],
    }


def read_json(name: str) -> Any:
    """Read JSON from a file or, for ``-``, from standard input; errors become ``ConfigError``."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{name}: cannot read ({err.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{name}: not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None


MPC = "mpc"


def allocate(step: StepInput, strategy: str | None, time_limit_s: float) -> dict[str, Any]:
    """The step's result as JSON. ``strategy`` overrides the input's; ``mpc`` plans with the predictive
    optimiser and keeps the input's strategy (EDF by default) as the core split it falls back to when the
    plan is late, fails or would break a rule — never no limit; ``mpc_fell_back`` says which it was."""
    if strategy != MPC:
        if strategy is not None:
            step = replace(step, strategy=Strategy(strategy))
        return result_json(control_step(step))
    planner = MpcPlanner(step_s=step.step_s, time_limit_s=time_limit_s, warm=False)
    out = result_json(control_step(step, planner=planner))
    out["mpc_fell_back"] = planner.fallbacks > 0
    return out


def run(args: argparse.Namespace) -> int:
    source = "stdin" if args.input == "-" else args.input
    try:
        step = parse_step(read_json(args.input), source)
    except ConfigError as err:
        print(f"chargeflow allocate: {err}", file=sys.stderr)
        return 2
    with native_stdout_to_stderr() as out:  # HiGHS's banner must not spoil the JSON
        print(json.dumps(allocate(step, args.strategy, args.mpc_time_limit), indent=2), file=out)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "allocate",
        help="one control step: P_needed, P_wished, P_granted and per-station limits, as JSON",
        description="Compute one control step of a site (TF-EVC eq. 3.2.5.1, 3.2.6.1–4) from a JSON "
        "description and print the result as JSON. See docs/allocate.md.",
    )
    p.add_argument(
        "--input", "-i", required=True, metavar="STEP.json", help="the step as JSON; - reads stdin"
    )
    p.add_argument(
        "--strategy",
        choices=[*(s.value for s in Strategy), MPC],
        help="overrides the input's strategy; mpc plans the EVs' stays with the predictive optimiser and "
        "falls back to the input's strategy (EDF by default) when the plan is late or breaks a rule",
    )
    p.add_argument(
        "--mpc-time-limit",
        type=float,
        default=0.5,
        metavar="S",
        help="with --strategy mpc: the solver's time limit in seconds, after which the core split stands",
    )
    p.set_defaults(handler=run)

"""``chargeflow demo``: until the simulated site lands, one control step of a sample workplace site,
computed with every strategy and shown as tables."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from importlib import resources

from rich.console import Console
from rich.table import Table

from chargeflow.allocate import StepInput, StepResult, control_step
from chargeflow.commands.allocate import parse_step
from chargeflow.csm.split import Strategy


def load_demo_step() -> StepInput:
    text = resources.files("chargeflow").joinpath("data/demo_step.json").read_text(encoding="utf-8")
    return parse_step(json.loads(text), "demo_step.json")


def _kw(power_w: float) -> str:
    return f"{power_w / 1000:.1f} kW"


def _summary(r: StepResult) -> str:
    return (
        f"needed {_kw(r.needed_w)}, wished {_kw(r.wished_w)}, granted {_kw(r.granted_w)} ({r.grant_reason}); "
        f"ESS {r.ess_discharge_w / 1000:+.1f} kW ({r.ess_reason}); grid {_kw(r.grid_w)}; "
        + ("all needs met" if r.feasible else "NEEDS NOT MET")
    )


def run(args: argparse.Namespace) -> int:
    console = Console()
    step = load_demo_step()
    b = step.building
    console.print(
        f"[bold]Chargeflow demo[/] — site at {step.now:%Y-%m-%d %H:%M}Z: grid limit "
        f"{step.site.grid.max_import_w / 1000:.0f} kW import, building {b.consumption_w / 1000:.1f} kW, "
        f"PV {b.generation_w / 1000:.1f} kW, energy price {step.price_per_kwh} per kWh, "
        f"{len(step.sessions)} EVs on circuits {', '.join(c.id for c in step.site.circuits)}"
    )
    for strategy in Strategy:
        result = control_step(replace(step, strategy=strategy))
        table = Table(
            title=f"strategy {strategy.value}: {_summary(result)}",
            title_justify="left",
        )
        for col in ("station", "current [A]", "power [kW]", "need met", "limited by"):
            table.add_column(col, justify="right" if "[" in col else "left")
        for lim in result.limits:
            table.add_row(
                lim.id,
                f"{lim.current_a:.1f}",
                f"{lim.power_w / 1000:.2f}",
                "yes" if lim.need_met else "no",
                lim.reason,
            )
        console.print(table)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="a sample site's control step under every strategy")
    p.set_defaults(handler=run)

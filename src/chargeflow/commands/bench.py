"""``chargeflow bench …``: reproducible benchmarks; each kind registers itself under ``bench``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from chargeflow.csm.split import Strategy
from chargeflow.sim.bench_allocate import bench_allocate


def run_allocate(args: argparse.Namespace) -> int:
    strategies = list(Strategy) if args.strategy == "all" else [Strategy(args.strategy)]
    results = [bench_allocate(args.evs, s, steps=args.steps, seed=args.seed) for s in strategies]
    if args.json:
        records = [asdict(r) for r in results]
        print(json.dumps(records[0] if len(records) == 1 else records, indent=2))
        return 0
    for r in results:
        print(
            f"allocate: {r.evs} EVs on {r.circuits} circuits, strategy {r.strategy}, {r.steps} steps: "
            f"median {r.ms_per_step_median:.2f} ms, p95 {r.ms_per_step_p95:.2f} ms per step "
            f"(needs met in {r.needs_met_steps_pct:.0f} % of steps)"
        )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser("bench", help="benchmarks")
    kinds = bench.add_subparsers(dest="bench", metavar="KIND", required=True)
    p = kinds.add_parser("allocate", help="time one control step on a synthetic three-level site")
    p.add_argument("--evs", type=int, default=1000, help="connected EVs (default 1000)")
    p.add_argument("--strategy", default="equal", choices=[*(s.value for s in Strategy), "all"])
    p.add_argument("--steps", type=int, default=100, help="measured steps (default 100)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--json", action="store_true", help="print evs, ms_per_step_median, ms_per_step_p95 as JSON"
    )
    p.set_defaults(handler=run_allocate)

"""``chargeflow bench …``: reproducible benchmarks; each kind registers itself under ``bench``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from chargeflow.bench.allocate import bench_allocate, bench_steps
from chargeflow.bench.mpc import bench_mpc
from chargeflow.commands.native_output import native_stdout_to_stderr, solver_banner_to_stderr
from chargeflow.csm.split import Strategy

if TYPE_CHECKING:
    from rich.progress import TaskID


def _run_allocate_mpc(args: argparse.Namespace) -> int:
    with native_stdout_to_stderr() as out:
        m = bench_mpc(args.evs, steps=args.steps, seed=args.seed)
        if args.json:
            print(json.dumps(asdict(m), indent=2), file=out)
        else:
            print(
                f"allocate: {m.evs} EVs on {m.circuits} circuits, strategy mpc (24 h of 15-min slots), "
                f"{m.steps} consecutive steps: cold median {m.ms_per_step_median:.2f} ms, "
                f"p95 {m.ms_per_step_p95:.2f} ms per step ({m.fallbacks} fell back to the core split); "
                f"warm median {m.warm_ms_per_step_median:.2f} ms, p95 {m.warm_ms_per_step_p95:.2f} ms "
                f"({m.warm_starts} started from the previous plan, "
                f"{m.warm_fallbacks} fell back to the core split)",
                file=out,
            )
    return 0


def run_allocate(args: argparse.Namespace) -> int:
    if args.strategy == "mpc":
        return _run_allocate_mpc(args)
    strategies = list(Strategy) if args.strategy == "all" else [Strategy(args.strategy)]
    results = [bench_allocate(args.evs, s, steps=args.steps, seed=args.seed) for s in strategies]
    peer = None
    if args.peer:
        try:
            from chargeflow.bench.peer import compare_with_acnportal
        except ImportError as e:  # acnportal is the ``bench`` extra, not a runtime dependency
            print(
                f"bench allocate --peer needs acnportal: pip install 'chargeflow[bench]' ({e})",
                file=sys.stderr,
            )
            return 2
        peer = compare_with_acnportal(bench_steps(args.evs, Strategy.EDF, args.peer_steps, args.seed))
    if args.json:
        records = [asdict(r) for r in results]
        out: dict[str, object] | list[dict[str, object]] = records[0] if len(records) == 1 else records
        if peer is not None:
            out = {"ours": out, "peer_acnportal_edf": asdict(peer)}
        print(json.dumps(out, indent=2))
        return 0
    for r in results:
        print(
            f"allocate: {r.evs} EVs on {r.circuits} circuits, strategy {r.strategy}, {r.steps} steps: "
            f"median {r.ms_per_step_median:.2f} ms, p95 {r.ms_per_step_p95:.2f} ms per step "
            f"(needs met in {r.needs_met_steps_pct:.0f} % of steps)"
        )
    if peer is not None:
        print(
            f"peer, same {peer.steps} steps: acnportal EDF {peer.peer_ms_per_step_median:.1f} ms per step, "
            f"our whole control step (EDF) {peer.ours_ms_per_step_median:.2f} ms: {peer.speedup:g}x; "
            f"our current / acnportal's {peer.current_ratio:.4f}; acnportal steps over a limit "
            f"{peer.peer_violations}"
        )
    return 0


def run_acn(args: argparse.Namespace) -> int:
    try:
        from chargeflow.bench import acn_bench, acn_sessions
    except ImportError as e:  # acnportal is the ``bench`` extra, not a runtime dependency
        print(f"bench acn needs acnportal: pip install 'chargeflow[bench]' ({e})", file=sys.stderr)
        return 2
    capacities = [float(c) for c in args.capacities.split(",")]
    algorithms = acn_bench.ALGORITHMS if args.algorithms == "all" else tuple(args.algorithms.split(","))
    unknown = set(algorithms) - set(acn_bench.ALGORITHMS) - set(acn_bench.EXTRA)
    if unknown:
        print(f"unknown algorithms: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.events is not None:
        evs = acn_bench.evs_of(acn_bench.load_queue(Path(args.events)))
        origin = acn_bench.MARCH_2019
    else:
        evs, origin = acn_sessions.evs_from_sessions(Path(args.sessions), args.site)
    start = origin
    if args.start is not None:
        start = datetime.combine(date.fromisoformat(args.start), time(), tzinfo=acn_bench.CALTECH_TZ)
    first = acn_bench.start_slot(start, origin)
    n_slots = None if args.days is None else args.days * 24 * 60 // acn_bench.PERIOD_MIN
    evs = acn_bench.window(evs, first, n_slots)

    def show(r: acn_bench.AcnRecord, out: TextIO) -> None:
        if not args.json:
            print(
                f"{r.capacity_kw:6.1f} kW  {r.algorithm:<12} energy {r.energy_delivered_pct:6.2f} %  "
                f"demands met {r.demands_fully_met_pct:6.2f} %  peak {r.peak_kw:6.2f} kW  "
                f"median {r.ms_per_step_median:7.2f} ms  p95 {r.ms_per_step_p95:7.2f} ms  "
                f"violations {r.violations}  fallbacks {r.fallbacks}",
                file=out,
                flush=True,
            )

    if not args.json:
        print(
            f"bench acn: {len(evs)} sessions from {start.date()}, battery {args.battery}, steps {args.steps}"
            + ("" if args.site == "caltech" else f", site {args.site}"),
            flush=True,
        )
    # The runs take minutes each (a month is ~9,000 periods): a bar on stderr for the run under way, made
    # when it starts and erased when it ends, before its record is printed; drawn on a terminal only (rich
    # draws nothing live elsewhere), so logs and --json stay clean. The solver's banner goes out first.
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    if any(a.startswith("mpc") or a == "offline" for a in algorithms):
        solver_banner_to_stderr()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"))
    console = Console(stderr=True)
    live: list[tuple[Progress, TaskID]] = []

    def step(capacity_kw: float, name: str, done: int, total: int) -> None:
        if not live:
            bar = Progress(*columns, TimeRemainingColumn(), console=console, transient=True)
            bar.start()
            live.append((bar, bar.add_task(f"{capacity_kw:g} kW {name}", total=total)))
        bar, task = live[0]
        bar.update(task, completed=done)
        if done >= total:
            bar.stop()
            live.clear()

    try:
        with native_stdout_to_stderr() as out:
            records = acn_bench.bench_acn(
                evs,
                capacities,
                algorithms,
                taper=args.battery == "taper",
                discrete=args.steps == "discrete",
                start=start,
                progress=lambda r: show(r, out),
                site=args.site,
                steps=step,
            )
    finally:
        for bar, _ in live:
            bar.stop()
    if "mpc_forecast" in algorithms and not args.json:
        err = acn_bench.arrival_forecast_errors(evs, start)
        print(
            f"mpc_forecast's arrivals forecast, {err.energy_kwh.n} hours: energy MAE "
            f"{err.energy_kwh.mae:.2f} kWh/h, bias {err.energy_kwh.bias:+.2f} kWh/h (mean "
            f"{err.energy_kwh.mean_actual:.2f}); sessions MAE {err.sessions.mae:.2f}/h, bias "
            f"{err.sessions.bias:+.2f}/h (mean {err.sessions.mean_actual:.2f}); departures and energies are "
            "the events' own (no forecast error)"
        )
    if args.plot is not None:
        from chargeflow.bench.acn_plot import plot_energy

        name = {"caltech": "Caltech", "jpl": "JPL"}[args.site]
        plot_energy(records, Path(args.plot), f"ACN-Sim {name}, {args.battery} battery, {args.steps} pilots")
    if args.json:
        print(json.dumps([asdict(r) for r in records], indent=2))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser("bench", help="benchmarks")
    kinds = bench.add_subparsers(dest="bench", metavar="KIND", required=True)
    p = kinds.add_parser("allocate", help="time one control step on a synthetic three-level site")
    p.add_argument("--evs", type=int, default=1000, help="connected EVs (default 1000)")
    p.add_argument("--strategy", default="equal", choices=[*(s.value for s in Strategy), "all", "mpc"])
    p.add_argument("--steps", type=int, default=100, help="measured steps (default 100)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--json", action="store_true", help="print evs, ms_per_step_median, ms_per_step_p95 as JSON"
    )
    p.add_argument(
        "--peer", action="store_true", help="also time acnportal's EDF on the same steps (bench extra)"
    )
    p.add_argument("--peer-steps", type=int, default=3, help="steps for the peer comparison (default 3)")
    p.set_defaults(handler=run_allocate)

    a = kinds.add_parser(
        "acn",
        help="our optimiser beside acnportal's algorithms inside ACN-Sim (needs the 'bench' extra)",
    )
    source = a.add_mutually_exclusive_group(required=True)
    source.add_argument("--events", help="an ACN-Sim event queue (.json.gz), time 0 at 2019-03-01 local")
    source.add_argument("--sessions", help="ACN-Data sessions (.csv.gz), converted to ACN-Sim events")
    a.add_argument("--start", help="first day (YYYY-MM-DD, site local time); default: the data's first day")
    a.add_argument("--days", type=int, help="days from --start (default: all)")
    a.add_argument("--capacities", default="20,30,40", help="transformer capacities in kW (default 20,30,40)")
    a.add_argument(
        "--site",
        choices=("caltech", "jpl"),
        default="caltech",
        help="acnportal's network (default caltech); jpl has two transformers, each limited to its share "
        "of the capacity (45/195 and 150/195 of it, their rated sizes' ratio)",
    )
    a.add_argument("--battery", choices=("ideal", "taper"), default="ideal")
    a.add_argument("--steps", choices=("continuous", "discrete"), default="continuous")
    a.add_argument(
        "--algorithms",
        default="all",
        help="comma-separated (default all), from: "
        + ", ".join(
            (
                "mpc",
                "offline",
                "uncontrolled",
                "edf",
                "llf",
                "round_robin",
                "mpc_forecast",
                "mpc_phase",
                "mpc_complete",
                "mpc_oracle",
            )
        ),
    )
    a.add_argument(
        "--json",
        action="store_true",
        help="print a list of records: capacity_kw, algorithm, energy_delivered_pct, demands_fully_met_pct, "
        "peak_kw, ms_per_step_median, ms_per_step_p95, violations, steps, fallbacks",
    )
    a.add_argument("--plot", help="also draw energy delivered against capacity to this PNG file")
    a.set_defaults(handler=run_acn)

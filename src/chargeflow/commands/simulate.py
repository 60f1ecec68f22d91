"""``chargeflow simulate``: a headless study of a site over days or months, with real sessions."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import IO, Any, TextIO
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from chargeflow.commands.native_output import native_stdout_to_stderr
from chargeflow.sim.data import (
    DataError,
    Profile,
    SessionRecord,
    load_building_profile,
    load_prices,
    load_pv_profile,
    load_sessions,
    synthetic_building_profile,
    synthetic_pv_profile,
)
from chargeflow.sim.headless import STRATEGIES, SimConfig, SimResult, StepRow, simulate
from chargeflow.site.config import ConfigError, load_site, parse_site
from chargeflow.site.model import Site

BUILDING_FILE = "profiles/office_medium_los_angeles_hourly.csv"
PV_FILE = "profiles/pv_jpl_220kwdc_30min.csv"
PRICES_FILE = "prices/nl_day_ahead_2022-01_2023-09_hourly.csv"
#: the sun the shared PV profile follows, for the site plan's clear-sky forecast: the profile is JPL's array
#: (34.2° N, 118.2° W) in its local standard time, which the simulator plays on the site's wall clock. On
#: Central European Summer Time (UTC+2) that is JPL's sun 10 hours early: 118.2° W + 10 · 15° = 31.8° E.
PV_SUN = (34.2, 31.8)


DEFAULT_SITE_FILE = "workplace_site.yaml"


def default_site_data() -> Any:
    """The demo's workplace site file, as read from its YAML: the site, its tariffs and energy prices."""
    import yaml

    text = resources.files("chargeflow").joinpath(f"data/{DEFAULT_SITE_FILE}").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def default_site() -> Site:
    return parse_site(default_site_data(), DEFAULT_SITE_FILE)


def find_data_dir(given: str | None) -> Path | None:
    """The shared data folder: ``--data``, ``CHARGEFLOW_DATA``, or ``../shared/data`` beside the project."""
    for candidate in (given, os.environ.get("CHARGEFLOW_DATA"), "../shared/data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def _profile(
    data: Path | None, name: str, loader: Callable[[Path, str], Profile], fallback: Profile
) -> Profile:
    if data is not None and (data / name).is_file():
        return loader(data / name, fallback.timezone)
    return fallback


def build_config(args: argparse.Namespace) -> tuple[SimConfig, list[SessionRecord], str]:
    """The simulation as the options describe it, and a line saying which data it runs on."""
    site = load_site(Path(args.site)) if args.site else default_site()
    records = load_sessions(Path(args.sessions))
    data = find_data_dir(args.data)
    tz = site.timezone
    building = _profile(data, BUILDING_FILE, load_building_profile, synthetic_building_profile(tz))
    pv = _profile(data, PV_FILE, load_pv_profile, synthetic_pv_profile(tz))
    prices = load_prices(data / PRICES_FILE) if data is not None and (data / PRICES_FILE).is_file() else None
    zone = ZoneInfo(tz)
    start_day = date.fromisoformat(args.start) if args.start else records[0].arrival.astimezone(zone).date()
    start = datetime.combine(start_day, time(0), zone)
    if args.days is not None:
        end = start + timedelta(days=args.days)
    else:
        last = max(r.departure for r in records).astimezone(zone).date()
        end = datetime.combine(last + timedelta(days=1), time(0), zone)
    config = SimConfig(
        site=site,
        start=start,
        end=end,
        strategy=args.strategy,
        step_s=args.step,
        building=building,
        pv=pv,
        prices=prices,
        margin_pct=args.margin_pct,
        need_share=args.need_share,
        planned_departure=args.departure,
        seed=args.seed,
        site_plan=args.site_plan,
        pv_location=args.pv_location,
    )
    used = [name for name in (BUILDING_FILE, PV_FILE, PRICES_FILE) if data and (data / name).is_file()]
    sources = f"data: {', '.join(used)}" if used else "generated building and PV profiles, no prices"
    return config, records, sources


class Timeline:
    """Collects the steps for the plot and writes them to the CSV as they come."""

    def __init__(self, site: Site, csv_path: str | None, keep: bool) -> None:
        self.rows: list[StepRow] = []
        self.keep = keep
        self._file: IO[str] | None = None
        self._writer: Any = None
        if csv_path:
            # Closed by close(): the file is written step by step for as long as the simulation runs.
            self._file = Path(csv_path).open("w", newline="", encoding="utf-8")  # noqa: SIM115
            self._writer = csv.writer(self._file)
            circuits = [f"{c.id}_{what}" for c in site.circuits for what in ("max_phase_a", "fuse_a")]
            self._writer.writerow(
                ["time", "grid_w", "building_w", "pv_w", "ess_w", "ev_w", "granted_w", *circuits]
            )

    @property
    def wanted(self) -> bool:
        return self.keep or self._writer is not None

    def add(self, row: StepRow) -> None:
        if self.keep:
            self.rows.append(row)
        if self._writer is not None:
            powers = (row.grid_w, row.building_w, row.pv_w, row.ess_w, row.ev_w, row.granted_w)
            self._writer.writerow(
                [row.time.isoformat().replace("+00:00", "Z")]
                + [round(v, 1) for v in powers]
                + [round(v, 2) for pair in row.circuits for v in pair]
            )

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def run(args: argparse.Namespace) -> int:
    with native_stdout_to_stderr() as out:  # HiGHS (mpc, the site plan) prints a banner on stdout
        return _run(args, out)


def _run(args: argparse.Namespace, out: TextIO) -> int:
    err = Console(stderr=True)
    try:
        config, records, sources = build_config(args)
    except (ConfigError, DataError) as e:
        print(f"chargeflow simulate: {e}", file=sys.stderr)
        return 2
    site = config.site
    err.print(
        f"simulating {site.id} ({len(site.charging_points)} stations) from {config.start:%Y-%m-%d} "
        f"to {config.end:%Y-%m-%d}, strategy {config.strategy}; {sources}"
    )
    if args.compare:
        return _compare(config, records, err, out)
    timeline = Timeline(site, args.timeline, keep=bool(args.plot))
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"))
    try:
        with Progress(*columns, TimeRemainingColumn(), console=err, transient=True) as bar:
            task = bar.add_task("steps", total=None)
            result = simulate(
                config,
                records,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                on_step=timeline.add if timeline.wanted else None,
            )
    finally:
        timeline.close()
    if args.plot:
        from chargeflow.sim.plot import plot_timeline

        name = f"{config.strategy}+site_plan" if config.site_plan else config.strategy
        title = f"{site.id}: {name}, {config.start:%Y-%m-%d} – {config.end:%Y-%m-%d}"
        grid = site.grid
        plot_timeline(
            timeline.rows, grid.max_import_w, grid.max_export_w, Path(args.plot), title, site.timezone
        )
    print(json.dumps(result.as_json(), indent=2) if args.json else summary(result), file=out)
    return 0


def _compare(config: SimConfig, records: list[SessionRecord], err: Console, out: TextIO) -> int:
    """The rule-based step and the same step with the site plan, on the same sessions, data and seed."""
    results = {}
    for name, with_plan in ((config.strategy, False), (f"{config.strategy}+site_plan", True)):
        err.print(f"running {name}")
        results[name] = simulate(replace(config, site_plan=with_plan), records).as_json()
    print(json.dumps(results, indent=2), file=out)
    return 0


def _location(text: str) -> tuple[float, float]:
    try:
        lat, lon = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LAT,LON in degrees, got {text!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise argparse.ArgumentTypeError(f"latitude or longitude out of range: {text!r}")
    return lat, lon


def summary(r: SimResult) -> str:
    return "\n".join(
        [
            f"sessions            {r.sessions} placed, {r.turned_away} turned away",
            f"energy              {r.energy_delivered_kwh:,.1f} of {r.energy_requested_kwh:,.1f} kWh wished",
            f"needs met           {r.needs_met_pct:.1f} % of sessions",
            f"grid                {r.grid_import_kwh:,.1f} kWh in, peak {r.peak_import_w / 1000:.1f} kW",
            f"limit violations    {r.limit_violations} steps: grid {r.grid_violations} "
            f"(worst {r.max_overshoot_w / 1000:.1f} kW over), fuses {r.fuse_violations} "
            f"(worst {r.max_fuse_overshoot_a:.1f} A over)",
            f"PV self-consumption {r.pv_self_consumption_pct:.1f} %",
            f"energy cost         {r.energy_cost:.2f}",
            f"control step        {r.ms_per_step_median:.3f} ms median, {r.ms_per_step_mean:.3f} ms mean "
            f"over {r.steps} steps",
            *(
                [f"site plan           {r.site_plan_solves} solves, {r.site_plan_fallbacks} fallback steps"]
                if r.forecast_errors is not None
                else []
            ),
        ]
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate",
        help="headless study of a site with real sessions",
        description="Simulate a site over days or months (no sockets, simulated time) and print its metrics.",
    )
    p.add_argument(
        "--sessions", required=True, metavar="FILE", help="sessions, ACN-Data CSV (.csv or .csv.gz)"
    )
    p.add_argument("--site", metavar="SITE.yaml", help="the site file (default: the demo's workplace site)")
    p.add_argument("--days", type=int, help="days to simulate (default: until the last session ends)")
    p.add_argument("--start", metavar="DATE", help="first day, YYYY-MM-DD (default: the first session's day)")
    p.add_argument("--strategy", default="edf", choices=STRATEGIES)
    p.add_argument("--step", type=float, default=60.0, help="control step in s (default 60)")
    p.add_argument("--data", metavar="DIR", help="shared data folder with profiles/ and prices/")
    p.add_argument(
        "--margin-pct", type=float, default=3.0, help="controller's margin below limits (default 3)"
    )
    p.add_argument("--need-share", type=float, default=1.0, help="ΔE_min as a share of the delivered energy")
    p.add_argument(
        "--departure",
        choices=("estimated", "actual"),
        default="estimated",
        help="departure the controller plans for: the driver's estimate (default) or the actual one",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--site-plan",
        action="store_true",
        help="plan the site (EVs, ESS, PV, building) over the next day against prices, over the strategy",
    )
    p.add_argument(
        "--pv-location",
        type=_location,
        default=PV_SUN,
        metavar="LAT,LON",
        help="the PV's sun for the site plan's clear-sky forecast (default: that of the shared PV profile)",
    )
    p.add_argument(
        "--compare", action="store_true", help="run without and with the site plan; print both as JSON"
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--timeline", metavar="OUT.csv", help="write one row per step")
    p.add_argument("--plot", metavar="OUT.png", help="plot power flows and the grid limit")
    p.set_defaults(handler=run)

"""``chargeflow demo``: the whole system on a simulated workplace site: the dashboard in a browser, and a
live terminal view.

The CSM (OCPP on 9000, REST API on 8000, SQLite), its smart charging and the EMS run as on a real site;
stations, EVs, building, PV and battery are simulated, on a clock that runs 60 times faster than real
time. ``--one-step`` shows a single control step of a sample site under every strategy instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from chargeflow.billing.setup import BillingRules, rules_from_config
from chargeflow.commands.allocate import parse_step
from chargeflow.commands.native_output import solver_banner_to_stderr
from chargeflow.commands.simulate import (
    BUILDING_FILE,
    DEFAULT_SITE_FILE,
    PV_FILE,
    PV_SUN,
    default_site,
    default_site_data,
    find_data_dir,
)
from chargeflow.control.allocate import StepInput, StepResult, control_step
from chargeflow.csm.split import Strategy
from chargeflow.runtime.demo import (
    Endpoints,
    LiveConfig,
    LiveState,
    demo_day_sessions,
    run_live,
    shift_sessions,
)
from chargeflow.sim.data import (
    DataError,
    SessionRecord,
    load_building_profile,
    load_pv_profile,
    load_sessions,
    synthetic_building_profile,
    synthetic_pv_profile,
)
from chargeflow.sim.headless import MPC
from chargeflow.site.model import Site
from chargeflow.site.prices import EnergyPrices

SESSIONS_FILE = "acn/caltech_2019-05_2019-08.csv.gz"
#: the demo's working day of the shared sessions (``demo_day_sessions``), shipped in the package for a
#: clone without the shared data (see data/ACN-LICENSE.md)
SHIPPED_DAY = date(2019, 5, 14)
SHIPPED_SESSIONS = f"data/acn_caltech_{SHIPPED_DAY.isoformat()}.csv.gz"
ACN_TZ = "America/Los_Angeles"


def shipped_sessions() -> list[SessionRecord]:
    """The one real ACN day shipped in the package: the Caltech sessions that arrived on ``SHIPPED_DAY``."""
    with resources.as_file(resources.files("chargeflow").joinpath(SHIPPED_SESSIONS)) as path:
        return load_sessions(path)


def demo_sessions(data: Path | None, site: Site, day: date) -> tuple[list[SessionRecord], str]:
    """The demo day's sessions on ``day`` and where they came from: the shared ACN file when ``data`` has
    it, else the day shipped in the package (the same day of the same file)."""
    if data is not None and (data / SESSIONS_FILE).is_file():
        sessions = demo_day_sessions(load_sessions(data / SESSIONS_FILE), site, day)
        return sessions, f"real ACN sessions of {SHIPPED_DAY} from {data / SESSIONS_FILE}"
    sessions = shift_sessions(shipped_sessions(), SHIPPED_DAY, ACN_TZ, day, site.timezone)
    return sessions, f"real ACN sessions of {SHIPPED_DAY} shipped with chargeflow (no shared data folder)"


def default_billing() -> BillingRules:
    """The demo site's tariffs (the ``billing:`` section of the same file as ``default_site``)."""
    from chargeflow.site.config import parse_billing

    return rules_from_config(parse_billing(default_site_data(), DEFAULT_SITE_FILE), DEFAULT_SITE_FILE)


def default_prices() -> EnergyPrices | None:
    """The demo site's energy prices (its ``energy_prices:`` section)."""
    from chargeflow.site.config import parse_energy_prices

    return parse_energy_prices(default_site_data(), DEFAULT_SITE_FILE)


def load_demo_step() -> StepInput:
    text = resources.files("chargeflow").joinpath("data/demo_step.json").read_text(encoding="utf-8")
    return parse_step(json.loads(text), "demo_step.json")


def run_one_step(console: Console) -> int:
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
        table = Table(title=f"strategy {strategy.value}: {_summary(result)}", title_justify="left")
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


def _kw(power_w: float) -> str:
    return f"{power_w / 1000:.1f} kW"


def _summary(r: StepResult) -> str:
    return (
        f"needed {_kw(r.needed_w)}, wished {_kw(r.wished_w)}, granted {_kw(r.granted_w)} ({r.grant_reason}); "
        f"ESS {r.ess_discharge_w / 1000:+.1f} kW ({r.ess_reason}); grid {_kw(r.grid_w)}; "
        + ("all needs met" if r.feasible else "NEEDS NOT MET")
    )


def pv_sun(start: datetime) -> tuple[float, float]:
    """The sun of the shared PV profile on the site's clock at ``start`` (``PV_SUN`` is that of summer
    time, UTC+2): JPL's sun, as many hours early as the site's UTC offset is ahead of JPL's standard time."""
    offset = start.utcoffset()
    hours = offset.total_seconds() / 3600 if offset is not None else 0.0
    return PV_SUN[0], PV_SUN[1] + 15.0 * (hours - 2.0)


def live_config(args: argparse.Namespace) -> LiveConfig:
    site = default_site()
    zone = ZoneInfo(site.timezone)
    today = datetime.now(UTC).astimezone(zone).date()
    start = datetime.combine(today, time(6, 30), zone)
    data = find_data_dir(args.data)
    tz = site.timezone
    building, pv = synthetic_building_profile(tz), synthetic_pv_profile(tz)
    sessions, sessions_source = demo_sessions(data, site, today)
    profiles_source = "building and PV: generated profiles (no shared data folder)"
    if data is not None:
        building = (
            load_building_profile(data / BUILDING_FILE, tz) if (data / BUILDING_FILE).is_file() else building
        )
        pv = load_pv_profile(data / PV_FILE, tz) if (data / PV_FILE).is_file() else pv
        profiles_source = (
            f"building: {'shared' if (data / BUILDING_FILE).is_file() else 'generated'} profile, "
            f"PV: {'shared' if (data / PV_FILE).is_file() else 'generated'} profile, from {data}"
        )
    token = os.environ.get("CHARGEFLOW_ADMIN_TOKEN") or secrets.token_urlsafe(24)
    password = os.environ.get("CHARGEFLOW_OWNER_PASSWORD") or secrets.token_urlsafe(12)
    return LiveConfig(
        site=site,
        sessions=sessions,
        building=building,
        pv=pv,
        start=start,
        duration=timedelta(hours=args.hours) if args.hours else None,
        speed=args.speed,
        step_s=args.step,
        strategy=Strategy.EDF if args.strategy == MPC else Strategy(args.strategy),
        plan_ahead=args.strategy == MPC,
        site_plan=getattr(args, "site_plan", False),
        pv_location=pv_sun(start),
        host=args.host,
        ocpp_port=args.ocpp_port,
        http_port=args.http_port,
        database_url=f"sqlite+aiosqlite:///{Path(args.database).resolve()}",
        admin_token=token,
        owner_password=password,
        billing=default_billing(),
        prices=default_prices(),
        data_sources=(sessions_source, profiles_source),
    )


def view(state: LiveState, config: LiveConfig) -> Group:
    t = state.truth
    grid = config.site.grid
    flows = Table.grid(padding=(0, 2))
    flows.add_row(
        f"[bold]{state.now.astimezone(ZoneInfo(config.site.timezone)):%H:%M}[/] local",
        f"grid [bold]{t.grid_w / 1000:6.1f}[/] kW of {grid.max_import_w / 1000:.0f}",
        f"building {t.building_w / 1000:5.1f} kW",
        f"PV {t.pv_w / 1000:5.1f} kW",
        f"battery {t.ess_w / 1000:+5.1f} kW",
        f"EVs {t.ev_w / 1000:5.1f} kW",
    )
    step = state.charging
    granted = "—" if step is None or step.granted_w is None else f"{step.granted_w / 1000:.1f} kW"
    flows.add_row(
        f"arrived {state.arrived}, turned away {state.turned_away}",
        f"granted {granted} ({state.grant_reason or '—'})",
        f"needed {(step.needed_w if step else 0) / 1000:.1f} kW",
        f"wished {(step.wished_w if step else 0) / 1000:.1f} kW",
        "[red]FALLBACK " + step.fallback + "[/]" if step is not None and step.fallback else "",
        "",
    )
    limits = {lim.station_id: lim for lim in (step.limits if step else ())}
    table = Table(expand=True)
    for col in ("station", "OCPP", "state", "limit [A]", "drawn [A]", "energy [kWh]", "limited by"):
        table.add_column(col, justify="right" if "[" in col else "left")
    for s in state.stations:
        lim = limits.get(s.id)
        tx = s.transaction
        energy = (s.energy_register_wh - tx.meter_start_wh) / 1000 if tx is not None else 0.0
        status = (
            "charging" if s.charging else "plugged" if s.plugged else "free" if s.connected else "offline"
        )
        table.add_row(
            s.id, s.version.value, status, f"{s.limit_a:.1f}", f"{s.current_a:.1f}", f"{energy:.1f}",
            lim.reason if lim else "",
        )  # fmt: skip
    parts: list[Table | Panel] = [flows, table]
    if state.events:
        parts.append(Panel("\n".join(state.events), title="events"))
    return Group(*parts)


def summary(state: LiveState) -> str:
    """The run's totals in one line (``--plain``)."""
    t = state.totals
    return (
        f"totals: EV energy {t.ev_wh / 1000:.1f} kWh, grid import {t.import_wh / 1000:.1f} kWh, "
        f"export {t.export_wh / 1000:.1f} kWh, peak import {t.peak_import_w / 1000:.1f} kW, "
        f"energy cost {t.cost:.2f}, battery net discharge {t.ess_discharged_wh / 1000:+.1f} kWh, "
        f"steps over the grid limit {t.over_grid_steps}, "
        f"arrived {state.arrived}, turned away {state.turned_away}"
        + (
            f"; site plan: {t.plan_solves} solves, {t.planned_steps} steps planned "
            f"({t.plan_grant_steps} with the grant held by the plan), {t.plan_fallbacks} fallback steps"
            if t.plan_solves
            else ""
        )
    )


def run(args: argparse.Namespace) -> int:
    console = Console()
    if args.one_step:
        return run_one_step(console)
    try:
        config = live_config(args)
    except (DataError, OSError) as e:
        console.print(f"chargeflow demo: {e}")
        return 2
    if config.plan_ahead or config.site_plan:
        solver_banner_to_stderr()
    live = Live(console=console, refresh_per_second=4, transient=False, auto_refresh=not args.plain)

    def ready(endpoints: Endpoints) -> None:
        console.print(
            f"[bold]Chargeflow demo[/]: {config.site.id}, "
            f"{len(config.site.charging_points)} stations over OCPP, "
            f"{len(config.sessions)} EV sessions of a working day, {config.speed:g}× real time\n"
            f"  [bold]Dashboard  {endpoints.dashboard_url}[/]   (owner password {endpoints.owner_password})\n"
            f"  Driver     {endpoints.http_url}/charge/{{station_id}}\n"
            f"  REST API   {endpoints.http_url}/api/stations   (docs {endpoints.http_url}/docs)\n"
            f"  Billing    {endpoints.http_url}/api/cdrs   /api/reports?period=day&format=csv  /api/tariffs\n"
            f"  OCPP       {endpoints.ocpp_url}/{{station_id}}\n"
            + "".join(f"  Data       {line}\n" for line in config.data_sources)
            + f"  admin token {endpoints.admin_token}   (Authorization: Bearer …)\n"
            "  Ctrl-C stops."
        )
        if not args.plain:
            live.start()

    last_print = [datetime.min.replace(tzinfo=UTC)]

    def step(state: LiveState) -> None:
        if args.plain:
            if state.now - last_print[0] >= timedelta(minutes=30):
                last_print[0] = state.now
                t = state.truth
                console.print(
                    f"{state.now:%H:%M}Z grid {t.grid_w / 1000:.1f} kW, EVs {t.ev_w / 1000:.1f} kW, "
                    f"charging {sum(1 for s in state.stations if s.charging)}, arrived {state.arrived}, "
                    f"turned away {state.turned_away}"
                )
        else:
            live.update(view(state, config))

    try:
        final = asyncio.run(run_live(config, ready, step))
        if args.plain:
            console.print(summary(final))
    except KeyboardInterrupt:
        console.print("stopped")
    except OSError as e:
        console.print(f"chargeflow demo: {e} (is another server on ports {args.ocpp_port}/{args.http_port}?)")
        return 2
    finally:
        live.stop()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="the whole system on a simulated workplace site, with a live view")
    p.add_argument("--one-step", action="store_true", help="show one control step under every strategy")
    p.add_argument("--hours", type=float, help="simulated hours to run (default: until Ctrl-C)")
    p.add_argument(
        "--speed", type=float, default=60.0, help="simulated seconds per real second (0: flat out)"
    )
    p.add_argument("--step", type=float, default=10.0, help="control step in simulated seconds (default 10)")
    p.add_argument(
        "--strategy",
        default="edf",
        choices=[*(s.value for s in Strategy), MPC],
        help="how the grant is split; mpc: the predictive optimiser, with EDF as its fallback",
    )
    p.add_argument(
        "--site-plan",
        action="store_true",
        help="the EMS plans the site (EVs as the CSM's demand profile, ESS, PV, building) over the next "
        "day against the site's energy prices; the rule-based step is its fallback",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--ocpp-port", type=int, default=9000)
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument(
        "--database", default="chargeflow-demo.db", help="SQLite file (default chargeflow-demo.db)"
    )
    p.add_argument("--data", metavar="DIR", help="shared data folder (sessions, profiles)")
    p.add_argument(
        "--plain", action="store_true", help="print a line every simulated half hour, no live view"
    )
    p.set_defaults(handler=run)

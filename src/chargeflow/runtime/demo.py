"""The live demo site: the whole system running on one accelerated clock.

The CSM (OCPP endpoint, SQLite store, REST API), its smart charging and the EMS run as they would on a
real site; the site around them is simulated: stations that are real OCPP clients (a mix of 1.6 and 2.0.1)
over loopback websockets, EVs with batteries, a building, PV, a battery and a smart meter. EVs arrive and
leave as real sessions did — the ACN-Data sessions of a day, shifted to today — or, without the data, as a
generated workplace day. Every simulated step the meters move, the stations report, and the control step
runs: demand → grant → split → charging profiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from chargeflow.billing.attribution import Shares, SiteStep
from chargeflow.billing.service import BillingService
from chargeflow.billing.setup import BillingRules
from chargeflow.clock import ManualClock
from chargeflow.control.allocate_mpc import MpcPlanner
from chargeflow.csm.service import CsmConfig
from chargeflow.csm.smart_charging import ChargingStep, SmartChargingConfig
from chargeflow.csm.split import Strategy
from chargeflow.ems.live_plan import SITE_PLAN, LivePlanner
from chargeflow.ems.service import EmsConfig
from chargeflow.ems.site_forecast import BuildingForecaster, PvForecaster
from chargeflow.exchange import InMemoryExchange
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.app import http_port, http_server, open_stores, request_ids
from chargeflow.runtime.control import SiteControl, build_site_control
from chargeflow.runtime.site import RunningSiteView
from chargeflow.sim.data import Profile, SessionRecord
from chargeflow.sim.headless import ev_for, preferences_of
from chargeflow.sim.meter import SimulatedSite, SiteTruth
from chargeflow.sim.site_runner import SiteRunner, mixed_versions
from chargeflow.sim.stations import SimulatedStation
from chargeflow.site.model import Site
from chargeflow.site.prices import EnergyPrices
from chargeflow.units import SECONDS_PER_HOUR
from chargeflow.web.api import create_api
from chargeflow.web.auth import OwnerAuth
from chargeflow.web.live import FlowHistory, FlowSample, step_reason
from chargeflow.web.ui import UiSettings


@dataclass(frozen=True, slots=True)
class LiveConfig:
    site: Site
    sessions: Sequence[SessionRecord]
    building: Profile
    pv: Profile
    start: datetime
    duration: timedelta | None = None  # None: until stopped
    speed: float = 60.0  # simulated seconds per real second; 0: as fast as it goes
    step_s: float = 10.0
    strategy: Strategy = Strategy.EDF
    prices: EnergyPrices | None = None  # the site's energy prices, for drivers' price caps
    plan_ahead: bool = False  # the predictive optimiser on top of the strategy's split (``--strategy mpc``)
    site_plan: bool = False  # the EMS plans the site over the next day from the CSM's demand profile
    #: the sun the site plan's PV forecast follows (latitude, longitude); None: no PV forecast
    pv_location: tuple[float, float] | None = None
    host: str = "127.0.0.1"
    ocpp_port: int = 9000
    http_port: int = 8000
    database_url: str = "sqlite+aiosqlite:///chargeflow-demo.db"
    admin_token: str = ""
    owner_password: str = ""  # the site owner's dashboard login; without one no dashboard is served
    seed: int = 1
    billing: BillingRules = field(default_factory=BillingRules)  # the site's tariffs; none: free charging
    #: where the sessions and profiles came from, one line each, for the start-up lines
    data_sources: tuple[str, ...] = ()


@dataclass(slots=True)
class RunTotals:
    """What the run so far came to, from the simulated site's true flows."""

    ev_wh: float = 0.0
    import_wh: float = 0.0
    export_wh: float = 0.0
    peak_import_w: float = 0.0
    cost: float = 0.0  # import × the site's energy price at the step's start; export earns nothing
    ess_discharged_wh: float = 0.0  # the ESS's net discharge: what the run took out of the battery
    over_grid_steps: int = 0  # steps whose grid import was above the grid access limit
    planned_steps: int = 0  # steps the EMS's site plan decided (grant and ESS)
    plan_grant_steps: int = 0  # ... of which the plan held the grant below the rules' (reason site_plan)
    plan_solves: int = 0
    plan_fallbacks: int = 0  # steps with a site planner but no plan in force: the rule-based step stood

    def add(self, truth: SiteTruth, step_s: float, price_per_kwh: float, max_import_w: float) -> None:
        hours = step_s / SECONDS_PER_HOUR
        grid_w = truth.grid_w
        self.ev_wh += truth.ev_w * hours
        self.ess_discharged_wh += truth.ess_w * hours
        self.import_wh += max(grid_w, 0.0) * hours
        self.export_wh += max(-grid_w, 0.0) * hours
        self.peak_import_w = max(self.peak_import_w, grid_w)
        self.cost += max(grid_w, 0.0) * hours / 1000 * price_per_kwh
        self.over_grid_steps += grid_w > max_import_w + 1e-6


@dataclass(slots=True)
class LiveState:
    """What the terminal view (and later the dashboard) shows after each step."""

    now: datetime
    truth: SiteTruth
    charging: ChargingStep | None
    grant_reason: str
    stations: Sequence[SimulatedStation]
    arrived: int = 0
    turned_away: int = 0
    events: list[str] = field(default_factory=list)
    sources: tuple[SiteStep, dict[str, Shares]] | None = None  # the step's energy and who it went to
    totals: RunTotals = field(default_factory=RunTotals)


@dataclass(frozen=True, slots=True)
class Endpoints:
    ocpp_url: str
    http_url: str
    admin_token: str
    owner_password: str = ""

    @property
    def dashboard_url(self) -> str:
        return f"{self.http_url}/dashboard"


def shift_sessions(
    records: Sequence[SessionRecord], source_day: date, source_tz: str, day: date, tz: str
) -> list[SessionRecord]:
    """The sessions of ``source_day`` (local to ``source_tz``) moved to the same local times of ``day``."""
    src = ZoneInfo(source_tz)
    start = datetime.combine(source_day, time(0), src)
    delta = datetime.combine(day, time(0), ZoneInfo(tz)) - start
    out = []
    for r in records:
        if start <= r.arrival < start + timedelta(days=1):
            out.append(
                SessionRecord(
                    r.id, r.station_id, r.arrival + delta, r.departure + delta,
                    r.estimated_departure + delta, r.requested_wh, r.delivered_wh,
                )
            )  # fmt: skip
    return out


async def run_live(
    config: LiveConfig,
    on_ready: Callable[[Endpoints], None],
    on_step: Callable[[LiveState], None],
) -> LiveState:
    site = config.site
    clock = ManualClock(config.start)
    rng = random.Random(config.seed)
    runner_power = [0.0]
    meter = SimulatedSite(site, clock, config.building, config.pv, lambda: runner_power[0], seed=config.seed)
    async with contextlib.AsyncExitStack() as stack:
        stores = await stack.enter_async_context(open_stores(config.database_url))
        billing = BillingService(stores.billing, config.billing, ZoneInfo(site.timezone))
        await billing.catch_up()
        bus = InMemoryExchange()
        control = build_site_control(
            site,
            stores.repository,
            clock,
            bus,
            bus,
            meter,
            CsmConfig(auto_register=True, accept_unknown_tokens=True, heartbeat_interval_s=300),  # free vend
            OcppServerConfig(host=config.host, port=config.ocpp_port, call_timeout_s=10.0),
            SmartChargingConfig(
                strategy=config.strategy,
                step_s=config.step_s,
                planner=MpcPlanner.for_step(config.step_s) if config.plan_ahead else None,
                prices=config.prices,
            ),
            EmsConfig(step_s=config.step_s),
            ess=meter,
            billing=billing,
            site_planner=site_planner(config) if config.site_plan else None,
        )
        history = FlowHistory(store=stores.flows)
        await history.load_recent(clock.now())
        view = RunningSiteView(site, clock, control, history)
        ui = (
            UiSettings(view, OwnerAuth(config.owner_password), billing=billing)
            if config.owner_password
            else None
        )
        api = create_api(
            control.node.service,
            control.node.operations,
            config.admin_token,
            request_ids(clock),
            ui,
            billing=billing,
        )
        http = http_server(api, config.host, config.http_port)
        async with asyncio.TaskGroup() as group:
            servers = [group.create_task(control.node.ocpp.serve()), group.create_task(http.serve())]
            try:
                await asyncio.wait_for(control.node.ocpp.started.wait(), 30)
                await asyncio.wait_for(http.listening.wait(), 30)
                ocpp_port = control.node.ocpp.port
                assert ocpp_port is not None
                base = f"ws://{config.host}:{ocpp_port}"
                http_url = f"http://{config.host}:{http_port(http)}"
                on_ready(Endpoints(base, http_url, config.admin_token, config.owner_password))
                versions = mixed_versions(len(site.charging_points))
                async with SiteRunner(base, site.charging_points, versions, clock) as runner:
                    state = await _loop(
                        config, clock, control, meter, runner, runner_power, rng, on_step, history
                    )
            finally:
                http.should_exit = True
                for task in servers[:1]:
                    task.cancel()
        return state


def site_planner(config: LiveConfig) -> LivePlanner:
    """The EMS's site plan for the demo site: its prices, its PV (at ``pv_location``'s sun), its ESS."""
    site = config.site
    pv_peak_w = sum(p.peak_w for p in site.pv)
    pv = None
    if config.pv_location is not None and pv_peak_w > 0:
        pv = PvForecaster(config.pv_location[0], config.pv_location[1], pv_peak_w)
    return LivePlanner(BuildingForecaster(site.timezone), pv, config.prices)


async def _loop(
    config: LiveConfig,
    clock: ManualClock,
    control: SiteControl,
    meter: SimulatedSite,
    runner: SiteRunner,
    runner_power: list[float],
    rng: random.Random,
    on_step: Callable[[LiveState], None],
    history: FlowHistory,
) -> LiveState:
    pending = sorted(config.sessions, key=lambda r: r.arrival)
    leaving: dict[str, datetime] = {}
    step = timedelta(seconds=config.step_s)
    end = config.start + config.duration if config.duration is not None else None
    state = LiveState(clock.now(), meter.truth, None, "", runner.stations)
    loop = asyncio.get_running_loop()
    started_real = loop.time()
    started_sim = clock.now()
    while end is None or clock.now() < end:
        now = clock.now()
        for station in runner.stations:
            if station.id in leaving and leaving[station.id] <= now:
                del leaving[station.id]
                await station.unplug()
        while pending and pending[0].arrival <= now:
            record = pending.pop(0)
            free = next((s for s in runner.stations if not s.plugged and s.connected), None)
            if free is None:
                state.turned_away += 1
                continue
            await _arrive(control, free, record, rng)
            leaving[free.id] = record.departure
            state.arrived += 1
        await control.step()
        step_start = clock.now()
        clock.advance(step)  # the EVs draw from the step's start under the limits just sent
        report = await runner.step(step_start, config.step_s)
        runner_power[0] = report.power_w
        truth = meter.advance(config.step_s)
        price = float(config.prices.at(step_start)) if config.prices is not None else 0.0
        state.totals.add(truth, config.step_s, price, config.site.grid.max_import_w)
        state.sources = await control.record_sources(config.step_s, truth.pv_w, truth.ess_w, truth.grid_w)
        decision = control.ems.last if control.ems is not None else None
        state.now, state.truth, state.charging = clock.now(), truth, control.charging.last
        state.grant_reason = decision.reason if decision is not None else ""
        if control.ems is not None and decision is not None and decision.at == step_start:
            state.totals.planned_steps += decision.planned
            state.totals.plan_grant_steps += decision.reason == SITE_PLAN
            state.totals.plan_solves = control.ems.plan_solves
            state.totals.plan_fallbacks = control.ems.plan_fallbacks
        state.events = control.charging.events[-5:]
        granted = state.charging.granted_w if state.charging is not None else None
        history.record(
            FlowSample(
                state.now,
                truth.grid_w,
                truth.building_w,
                truth.pv_w,
                truth.ess_w,
                truth.ev_w,
                granted,
                step_reason(state.charging),
            )
        )
        on_step(state)
        if config.speed > 0:
            due = started_real + (clock.now() - started_sim).total_seconds() / config.speed
            await asyncio.sleep(max(due - loop.time(), 0.0))
    return state


async def _arrive(
    control: SiteControl, station: SimulatedStation, record: SessionRecord, rng: random.Random
) -> None:
    """An EV plugs in. A 2.0.1 EV announces its needs itself; for the others the driver sets them (as on
    the driver page) once the session exists."""
    ev, soc = ev_for(record, station.point, rng)
    prefs = preferences_of(record, 1.0)
    announces = station.version.value != "1.6"
    await station.plug_in(ev, soc, f"tag-{record.id[-8:]}", prefs if announces else None)
    if not announces:
        running = await control.repository.list_transactions(station.id, active=True)
        for tx in running:
            control.charging.set_preferences(tx.id, prefs)


def demo_day_sessions(records: Sequence[SessionRecord], site: Site, day: date) -> list[SessionRecord]:
    """A busy working day of the ACN sessions (the Tuesday of the first full week), on ``day``."""
    first = min(r.arrival for r in records).astimezone(ZoneInfo("America/Los_Angeles")).date()
    tuesday = first + timedelta(days=(1 - first.weekday()) % 7 + 7)
    return shift_sessions(records, tuesday, "America/Los_Angeles", day, site.timezone)


def synthetic_sessions(site: Site, day: date, count: int, seed: int = 1) -> list[SessionRecord]:
    """A generated workplace day: arrivals around 8:30, stays around 8 h, 5–40 kWh."""
    rng = random.Random(seed)
    zone = ZoneInfo(site.timezone)
    out = []
    for i in range(count):
        arrival = datetime.combine(day, time(7), zone) + timedelta(minutes=max(rng.gauss(90, 60), 0))
        stay = timedelta(hours=min(max(rng.gauss(8, 2), 1.0), 11))
        energy = rng.randint(5, 40) * 1000
        out.append(
            SessionRecord(
                f"gen{i}",
                "",
                arrival,
                arrival + stay,
                arrival + stay + timedelta(minutes=rng.randint(-60, 60)),
                energy,
                energy,
            )
        )
    return out


def database_url_for(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"

"""The CSM's smart charging as a running actor (TF-EVC SmCh, section 3.2.6).

Each step it turns the running sessions into P_needed and P_wished and publishes them; it takes the EMS's
latest P_granted, splits it into per-station limits within every fuse (``csm.split``) and sends a limit to
a station only when it really changed. Fail-safe:

- no valid grant (the EMS is silent, or its message is outside its validity window because the clocks
  disagree) or no fresh reading of the site's other loads → every running session gets the configured
  safe current;
- every station gets a TxDefault profile at that safe current when it connects, so that it stays within
  the site's limits should its connection to the CSM drop;
- an EV that draws more than its limit for longer than a grace period is suspended (limit 0 A) and the
  event recorded: the station can cut its power but cannot make it draw less (framework 1.1.1).

With a ``LimitPlanner`` in its config (the predictive optimiser, ``allocate_mpc.MpcPlanner``) the split
is computed first and the planner then asks for limits of its own, in a worker thread so that the
stations' connections are served meanwhile; a plan that is not there within ``plan_timeout_s``, fails or
breaks a rule leaves the split in force (``plans_late`` counts the late ones), never no limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from chargeflow.clock import Clock
from chargeflow.csm.demand import DemandTable, EvSession, Preferences, demand_table
from chargeflow.csm.flexibility import demand_profile
from chargeflow.csm.live import LiveState
from chargeflow.csm.model import (
    EventOutcome,
    MeterSample,
    TransactionEvent,
    TransactionRecord,
)
from chargeflow.csm.overdraw import Excess, add_excess, excess_of, held_to
from chargeflow.csm.ports import CsmRepository, TxUpdate
from chargeflow.csm.safe import safe_currents
from chargeflow.csm.split import SplitResult, Strategy, split
from chargeflow.exchange import ExchangeBus, PowerDemand, Validity, value_at
from chargeflow.site.circuit_loads import EvDraw, measured_loads_a, other_loads_a
from chargeflow.site.measurement import SiteMeasurement, SiteMeter
from chargeflow.site.model import ChargingPoint, PhaseTriple, Site, with_margin
from chargeflow.site.prices import EnergyPrices
from chargeflow.site.tree import CircuitTree, check_site

log = logging.getLogger(__name__)

TX_DEFAULT = "TxDefaultProfile"
TX_PROFILE = "TxProfile"
#: a draw this far over its limit is meter noise, not excess
EXCESS_NOISE_A = 0.2
#: how far back a session's limits are kept to judge late readings against (``csm.overdraw.held_to``)
_HISTORY_S = 600.0
_HISTORY_LIMITS = 32


class StationControl(Protocol):
    def is_connected(self, station_id: str) -> bool: ...

    def connected_stations(self) -> Collection[str]:
        """The ids of the stations connected now."""
        ...

    async def set_limit(
        self,
        station_id: str,
        evse_id: int,
        current_a: float,
        purpose: str,
        transaction_id: str | None = None,
        power_w: float | None = None,
        stack_level: int = 0,
        valid_to: datetime | None = None,
    ) -> bool:
        """Send a limit: ``current_a`` per phase, or ``power_w`` to a station that takes power only (a
        TxProfile names its transaction), on ``stack_level``, holding until ``valid_to`` where given.
        True when the station accepted it."""
        ...


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Read a plan's outcome when it is done, so that a failure is logged even when its step has moved on."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("smart charging: the planner failed (%s); the split stands", task.exception())


class LimitPlanner(Protocol):
    """Limits from a plan ahead (``allocate_mpc.MpcPlanner.plan``), or None where the split must stand."""

    def plan(
        self,
        now: datetime,
        sessions: Sequence[EvSession],
        evs: DemandTable,
        tree: CircuitTree,
        other_loads_a: list[float],
        granted_w: float,
    ) -> SplitResult | None: ...


@dataclass(frozen=True, slots=True)
class SmartChargingConfig:
    strategy: Strategy = Strategy.EDF
    step_s: float = 10.0
    validity_steps: int = 3
    stale_after_steps: int = 3
    #: the most a station gets with no valid grant: capped by its share of the fuses and the grid with all
    #: stations drawing at once and the building at its peak (``csm.safe``); None: that share alone
    safe_current_a: float | None = 6.0
    margin_pct: float = 3.0
    default_wished_wh: int = 30_000  # a session without preferences: this much, …
    default_stay_s: float = 8 * 3600.0  # … by this long after it started
    overdraw_tolerance_a: float = 1.0
    overdraw_grace_s: float = 30.0
    #: how long an EV has to follow a lowered limit before its draw above it counts as excess
    comply_s: float = 10.0
    #: a session's limit holds this many steps at the station (validTo) unless renewed; a station that
    #: loses the CSM then falls back to its safe TxDefault. Renewed when half of it is left.
    profile_validity_steps: int = 6
    change_threshold_a: float = 0.1
    timeout_s: float = 10.0
    #: plans ahead on top of the split (``--strategy mpc``); None: the split alone
    planner: LimitPlanner | None = None
    plan_timeout_s: float = 2.0
    #: the site's energy prices (``site.prices``): drivers' price caps compare against them; None: no caps
    prices: EnergyPrices | None = None


@dataclass(frozen=True, slots=True)
class StationLimit:
    station_id: str
    evse_id: int
    transaction_id: int
    current_a: float
    reason: str
    sent: bool  # a new profile went to the station in this step
    accepted: bool | None  # the station's answer, None when nothing was sent


@dataclass(frozen=True, slots=True)
class ChargingStep:
    at: datetime
    needed_w: float
    wished_w: float
    granted_w: float | None
    fallback: str | None  # why the safe limit applies, None when the grant does
    limits: tuple[StationLimit, ...]
    events: tuple[str, ...] = ()
    refusing: tuple[str, ...] = ()  # stations that refuse every profile (``SmartCharging.refusing``)
    #: what EVs drew beyond their limits (``csm.overdraw``), taken off the grant and counted on the fuses
    excess_w: float = 0.0


@dataclass(frozen=True, slots=True)
class _Sent:
    """A session's limit as the station took it, until when it holds there, and the limits it took
    before with when (an EV is given ``comply_s`` to follow a lowered limit: ``csm.overdraw.held_to``)."""

    current_a: float
    valid_to: datetime
    history: tuple[tuple[datetime, float], ...]


@dataclass(slots=True)
class _Pending:
    table: DemandTable
    sessions: list[tuple[TransactionRecord, ChargingPoint]]
    evs: list[EvSession]
    #: sessions on no charging point of the site (a station with no place, an EVSE the file does not
    #: list): held at 0 A, since no fuse counts them
    unplaced: list[TransactionRecord]
    #: sessions drawing more than their limits: out of the split, their whole draw counted as a load
    #: (``csm.overdraw``); at their last limit during the grace period, then suspended at 0 A
    held: list[tuple[TransactionRecord, ChargingPoint]]


class SmartCharging:
    def __init__(
        self,
        site: Site,
        repository: CsmRepository,
        bus: ExchangeBus,
        control: StationControl,
        clock: Clock,
        config: SmartChargingConfig,
        meter: SiteMeter | None = None,
        live: LiveState | None = None,
    ) -> None:
        self.site = site
        self._view = with_margin(site, config.margin_pct)
        self._tree = check_site(self._view)
        shares = safe_currents(self._view, self._tree, site.building_peak_w or 0.0)
        cap = config.safe_current_a
        #: each station's safe limit: the TxDefault it holds from its first connection, and the fallback
        self.safe_a = {k: v if cap is None else min(v, cap) for k, v in shares.items()}
        self._fallback: str | None = None  # the last step's fallback, to tell when it changes
        #: what the running sessions' stations last said they draw, in W, as of the last demand
        self.ev_power_w = 0.0
        #: the listed stations' points, by station id
        self._listed: dict[str, list[ChargingPoint]] = {}
        for cp in site.charging_points:
            if not cp.auto:
                self._listed.setdefault(cp.station, []).append(cp)
        #: the places kept for stations that register themselves, free ones first in the file's order
        self._places = [cp for cp in site.charging_points if cp.auto]
        self.placed: dict[str, ChargingPoint] = {}  # a self-registered station: the place it took
        self._unplaced: set[str] = set()  # connected stations the site has no place for: held at 0 A
        self._repository = repository
        self._bus = bus
        self._control = control
        self._clock = clock
        self._config = config
        self._meter = meter
        self.live = live or LiveState()
        self._preferences: dict[int, Preferences] = {}
        self._sent: dict[int, _Sent] = {}  # the last limit each session took
        self._defaults: set[str] = set()  # stations that hold our TxDefault profile
        self._suspended: set[int] = set()
        self._circuits_unusable: set[str] = set()  # circuits whose meter could not be read last step
        self._circuits_last: dict[str, PhaseTriple] = {}  # each metered circuit's last non-EV load, A
        self.events: list[str] = []
        #: stations that refused every profile they were last sent: outside the site's control
        self.refusing: set[str] = set()
        self.last: ChargingStep | None = None
        self._known: list[tuple[TransactionRecord, ChargingPoint]] = []  # the last step's sessions
        self._pending: _Pending | None = None
        self._planning: asyncio.Future[SplitResult | None] | None = None
        #: steps whose plan was not there within ``plan_timeout_s`` (the split stood)
        self.plans_late = 0

    # --- preferences (ChPr) from the driver page, an app, or the EV over ISO 15118 ---

    def set_preferences(self, transaction_id: int, preferences: Preferences) -> None:
        self._preferences[transaction_id] = preferences

    def preferences_of(self, tx: TransactionRecord) -> Preferences:
        """The driver's, else the EV's own (NotifyEVChargingNeeds), else the site's default."""
        explicit = self._preferences.get(tx.id)
        if explicit is not None:
            return explicit
        departure = tx.departure_time or tx.started_at + timedelta(seconds=self._config.default_stay_s)
        if tx.energy_need_wh is not None:
            return Preferences(tx.energy_need_wh, tx.energy_need_wh, departure)
        return Preferences(0, self._config.default_wished_wh, departure)

    # --- one step ---

    async def publish_demand(self) -> DemandTable:
        """P_needed and P_wished of the running sessions now, and their profile over the next day
        (``csm.flexibility``), published for the EMS."""
        now = self._clock.now()
        running = await asyncio.wait_for(
            self._repository.list_transactions(active=True), self._config.timeout_s
        )
        sessions: list[tuple[TransactionRecord, ChargingPoint]] = []
        unplaced: list[TransactionRecord] = []
        held: list[tuple[TransactionRecord, ChargingPoint]] = []
        evs = []
        ev_w = 0.0
        for tx in running:
            live = self.live.get(tx.station_id, tx.evse_id)
            ev_w += live.power_w if live.power_w is not None else sum(live.current_a) * self.site.voltage_v
            point = self.point_of(tx.station_id, tx.evse_id)
            if point is None:
                unplaced.append(tx)  # no fuse counts it: held at 0 A
                continue
            if self._over_limit(tx, point, now) is None:
                live.over_since = None
            else:
                live.over_since = live.over_since or now
            if tx.id in self._suspended or live.over_since is not None:
                held.append((tx, point))  # it draws what it likes: out of the split, its draw counted
                continue
            offered = self._sent.get(tx.id)
            if offered is not None:  # what the EV drew under the limit in force tells its own maximum
                self.live.learn(tx.station_id, tx.evse_id, offered.current_a, point.min_current_a)
            charged = tx.energy_wh or 0
            prefs = self.preferences_of(tx)
            evs.append(EvSession.at(point, prefs, charged, live.estimate.current_a, phases=live.phases_used))
            sessions.append((tx, point))
        prices = self._config.prices
        price = prices.at(now) if prices is not None else None
        table = demand_table(evs, now, self._config.step_s, self.site.voltage_v, price)
        valid_until = now + timedelta(seconds=self._config.validity_steps * self._config.step_s)
        await self._bus.publish_demand(
            PowerDemand(
                self.site.id,
                Validity(now, valid_until),
                demand_profile(evs, table, now, self._config.step_s),
            )
        )
        self._pending = _Pending(table, sessions, evs, unplaced, held)
        self.ev_power_w = ev_w
        return table

    async def apply(self) -> ChargingStep:
        """Split the latest valid grant and send the limits that changed."""
        now = self._clock.now()
        if self._pending is None:  # called on its own: take the demand of this moment
            await self.publish_demand()
        pending, self._pending = self._pending, None
        assert pending is not None
        table, sessions = pending.table, pending.sessions
        grant = self._bus.latest_grant(self.site.id)
        granted = value_at(grant.points, now) if grant is not None and grant.validity.holds_at(now) else None
        measured = await self._fresh_measurement(now)
        fallback = None
        if granted is None:
            fallback = "fallback_no_valid_grant"
        elif measured is None:
            fallback = "fallback_measurements_stale"

        events = self._overdraw(now, pending.held)
        excess_w = 0.0
        if fallback is None and grant is not None and granted is not None and measured is not None:
            loads = self._other_loads(now, measured, sessions, events)
            excess_w = add_excess(self._tree, loads, self._excesses(now, pending))
            available = max(granted - excess_w, 0.0)
            result = split(table, self._tree, loads, available, self._config.strategy, grant.reason)
            if self._config.planner is not None:
                result = await self._plan(now, pending.evs, table, loads, available) or result
            targets = [(lim.current_a, lim.reason) for lim in result.limits]
        else:
            targets = [(self.safe_a.get(p.id, 0.0), fallback or "") for _, p in sessions]

        if fallback != self._fallback:
            event = (
                f"{now.isoformat()} all stations to their safe limit: {fallback}"
                if fallback is not None
                else f"{now.isoformat()} the grant is back in force ({self._fallback} ended)"
            )
            (log.warning if fallback is not None else log.info)(event)
            events.append(event)
            self.events.append(event)
            self._fallback = fallback
        limits = []
        for (tx, point), (current, reason) in zip(sessions, targets, strict=True):
            phases = self.live.get(tx.station_id, tx.evse_id).phases_used or point.phases
            limits.append(await self._send(tx, current, reason, phases))
        for tx, point in pending.held:
            held = self._sent.get(tx.id)
            current, reason = (held.current_a if held else self.safe_a.get(point.id, 0.0)), "overdrawing"
            if tx.id in self._suspended:
                current, reason = 0.0, "suspended_overdraw"
            limits.append(await self._send(tx, current, reason, point.phases))
        for tx in pending.unplaced:
            limits.append(await self._send(tx, 0.0, "not_on_the_site", 3))
        await self._tx_defaults()
        present = {tx.id for tx, _ in [*sessions, *pending.held]} | {tx.id for tx in pending.unplaced}
        self._sent = {k: v for k, v in self._sent.items() if k in present}  # ended sessions go
        step = ChargingStep(
            now,
            table.needed_w,
            table.wished_w,
            granted,
            fallback,
            tuple(limits),
            tuple(events),
            tuple(sorted(self.refusing)),
            excess_w,
        )
        self.last = step
        self._known = [*sessions, *pending.held]  # held ones too: a fallback takes them to safe or 0 A
        return step

    @property
    def planning(self) -> bool:
        """A plan is being made (in its worker thread)."""
        return self._planning is not None and not self._planning.done()

    async def _plan(
        self, now: datetime, evs: list[EvSession], table: DemandTable, loads: list[float], granted: float
    ) -> SplitResult | None:
        """The planner's limits, or None when it is late, still busy with an earlier step, or has none."""
        planner = self._config.planner
        assert planner is not None
        if self.planning:
            self.plans_late += 1  # the last plan is still running: one solve at a time
            return None
        task = asyncio.ensure_future(
            asyncio.to_thread(planner.plan, now, evs, table, self._tree, loads, granted)
        )
        self._planning = task
        task.add_done_callback(_retrieve)
        done, _ = await asyncio.wait({task}, timeout=self._config.plan_timeout_s)
        if not done:
            self.plans_late += 1
            log.warning(
                "smart charging: plan late after %.1f s; the split stands", self._config.plan_timeout_s
            )
            return None
        if task.exception() is not None:  # a planner that fails leaves the split in force (logged above)
            return None
        return task.result()

    async def step(self) -> ChargingStep:
        await self.publish_demand()
        return await self.apply()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.step()
            except (TimeoutError, OSError) as err:
                log.warning("smart charging: step failed (%s)", err)
            try:
                await asyncio.wait_for(stop.wait(), self._config.step_s)
            except TimeoutError:
                continue

    # --- helpers ---

    def _other_loads(
        self,
        now: datetime,
        measured: SiteMeasurement,
        sessions: Sequence[tuple[TransactionRecord, ChargingPoint]],
        events: list[str],
    ) -> list[float]:
        """The non-EV load on every fuse constraint (``site.circuit_loads``): the building's, and each
        circuit meter's reading less what the EVs below it draw, all read ``margin_pct`` high. A circuit
        meter that cannot be used, or is usable again, is an event once."""
        margin = self._config.margin_pct
        counted = measured.building.with_margin(margin)
        readings = [r.with_margin(margin) for r in measured.circuits]
        draws = []
        for tx, point in sessions:
            live = self.live.get(tx.station_id, tx.evse_id)
            sent = self._sent.get(tx.id)
            limit = sent.current_a if sent is not None else None
            draws.append(EvDraw.at(point, live.current_a, live.power_w, self.site.voltage_v, limit))
        unusable = {r.circuit for r in readings if r.power_w is None}
        for circuit in sorted(unusable ^ self._circuits_unusable):
            event = (
                f"{now.isoformat()} circuit {circuit}: its meter cannot be used; its load counts as its "
                "fuse less its stations' safe limits"
                if circuit in unusable
                else f"{now.isoformat()} circuit {circuit}: its meter is read again"
            )
            (log.warning if circuit in unusable else log.info)(event)
            events.append(event)
            self.events.append(event)
        self._circuits_unusable = unusable
        self._circuits_last.update(measured_loads_a(self._view, self._tree, readings, draws))
        return other_loads_a(
            self._view, self._tree, counted.consumption_w, readings, draws, self.safe_a, self._circuits_last
        )

    async def _fresh_measurement(self, now: datetime) -> SiteMeasurement | None:
        if self._meter is None:
            return None
        try:
            m = await asyncio.wait_for(self._meter.read(), self._config.timeout_s)
        except Exception as err:  # any failure of a meter is a missing reading: fall back, never stop
            log.warning("smart charging: no site measurement (%s: %s)", type(err).__name__, err)
            return None
        if now - m.at > timedelta(seconds=self._config.stale_after_steps * self._config.step_s):
            return None
        return m

    def _over_limit(self, tx: TransactionRecord, point: ChargingPoint, now: datetime) -> float | None:
        """The limit a session's EV draws more than (by ``overdraw_tolerance_a``) in its latest reading,
        given time to follow a lowered one; None where it keeps to it or has none of ours yet."""
        sent = self._sent.get(tx.id)
        if sent is None:
            return None
        live = self.live.get(tx.station_id, tx.evse_id)
        limit = self._held_to(sent, live.at or now, self.safe_a.get(point.id, 0.0))
        return limit if live.drawn_a > limit + self._config.overdraw_tolerance_a else None

    def _overdraw(self, now: datetime, held: Sequence[tuple[TransactionRecord, ChargingPoint]]) -> list[str]:
        """Suspend (0 A) the EVs that drew more than their limit for longer than the grace period."""
        events = []
        grace = timedelta(seconds=self._config.overdraw_grace_s)
        for tx, point in held:
            live = self.live.get(tx.station_id, tx.evse_id)
            if tx.id in self._suspended or live.over_since is None or now - live.over_since < grace:
                continue
            self._suspended.add(tx.id)
            sent = self._sent.get(tx.id)
            limit = sent.current_a if sent is not None else self.safe_a.get(point.id, 0.0)
            event = (
                f"{now.isoformat()} suspended {tx.station_id} (transaction {tx.id}): "
                f"drew {live.drawn_a:.1f} A under a {limit:.1f} A limit for {now - live.over_since}"
            )
            log.warning(event)
            events.append(event)
            self.events.append(event)
        return events

    async def _send(self, tx: TransactionRecord, current: float, reason: str, phases: int) -> StationLimit:
        """Send a session its limit where it changed, or where the one it holds is half way through its
        validity (renewed so that it never runs out while the CSM runs). Per session, not per connector:
        a new session on the same connector gets its own limit even where it equals the last one's."""
        now = self._clock.now()
        validity = timedelta(seconds=self._config.profile_validity_steps * self._config.step_s)
        last = self._sent.get(tx.id)
        if (
            last is not None
            and abs(last.current_a - current) < self._config.change_threshold_a
            and now < last.valid_to - validity / 2
        ):
            return StationLimit(tx.station_id, tx.evse_id, tx.id, current, reason, False, None)
        if not self._control.is_connected(tx.station_id):
            return StationLimit(tx.station_id, tx.evse_id, tx.id, current, reason, False, None)
        valid_to = now + validity
        try:
            wire_id = tx.external_id or str(tx.id)  # 2.0.1: the station's id; 1.6: the one we gave
            power = current * phases * self.site.voltage_v
            accepted = await self._control.set_limit(
                tx.station_id, tx.evse_id, current, TX_PROFILE, wire_id, power, valid_to=valid_to
            )
            if not accepted:  # a station that takes no Tx profiles: the limit as a default above the safe one
                accepted = await self._control.set_limit(
                    tx.station_id,
                    tx.evse_id,
                    current,
                    TX_DEFAULT,
                    power_w=power,
                    stack_level=1,
                    valid_to=valid_to,
                )
            self._answered(tx.station_id, accepted)
        except (TimeoutError, OSError, LookupError) as err:
            log.warning("smart charging: %s did not take its limit (%s)", tx.station_id, err)
            return StationLimit(tx.station_id, tx.evse_id, tx.id, current, reason, True, False)
        if accepted:
            past = last.history if last is not None else ()
            keep = now - timedelta(seconds=_HISTORY_S)
            history = (*tuple(h for h in past if h[0] >= keep)[-_HISTORY_LIMITS:], (now, current))
            self._sent[tx.id] = _Sent(current, valid_to, history)
        return StationLimit(tx.station_id, tx.evse_id, tx.id, current, reason, True, accepted)

    def _held_to(self, sent: _Sent, reading_at: datetime, default_a: float) -> float:
        """The limit a session's EV is held to in a reading taken at ``reading_at`` (``csm.overdraw``);
        ``default_a``, its station's safe default, for a reading from before the session's first limit."""
        found = held_to(sent.history, min(reading_at, self._clock.now()), self._config.comply_s)
        return default_a if found is None else found

    def _excesses(self, now: datetime, pending: _Pending) -> list[Excess]:
        """What each session draws beyond the limit in force at its station: the one it took while that
        holds, else its station's safe TxDefault (0 A where the site has no place for it)."""
        out = []
        root = self.site.root.id
        voltage = self.site.voltage_v
        held = {tx.id for tx, _ in pending.held}
        for tx, point in [*pending.sessions, *pending.held]:
            sent = self._sent.get(tx.id)
            in_force = self.safe_a.get(point.id, 0.0)  # what its station falls back to
            live = self.live.get(tx.station_id, tx.evse_id)
            if tx.id in held:
                in_force = 0.0  # out of the split: its whole draw counts
            elif sent is not None and now < sent.valid_to:
                in_force = self._held_to(sent, live.at or now, in_force)
            found = excess_of(point, root, live.current_a, in_force, voltage, EXCESS_NOISE_A)
            if found is not None:
                out.append(found)
        for tx in pending.unplaced:
            live = self.live.get(tx.station_id, tx.evse_id)
            found = excess_of(None, root, live.current_a, 0.0, voltage, EXCESS_NOISE_A)
            if found is not None:
                out.append(found)
        return out

    def _answered(self, station_id: str, accepted: bool) -> None:
        """A station that refused every profile it was sent (TxProfile and TxDefault) charges outside the
        site's control: a warning naming it, once per outage (it is retried every step and every second),
        and an event again when it takes a limit."""
        if accepted != (station_id in self.refusing):
            return
        now = self._clock.now().isoformat()
        if accepted:
            self.refusing.discard(station_id)
            event = f"{now} {station_id} accepts its charging limit again"
            log.info(event)
        else:
            self.refusing.add(station_id)
            event = (
                f"{now} {station_id} refuses every charging limit (TxProfile and TxDefault): "
                "it charges outside the site's control"
            )
            log.warning(event)
        self.events.append(event)

    async def send_safe_defaults(self) -> None:
        """Give every newly connected station its safe limit as its TxDefault profile; cheap to call
        often (between steps), so that a station holds it before its first transaction."""
        await self._tx_defaults()

    def point_of(self, station_id: str, evse_id: int) -> ChargingPoint | None:
        """The charging point of a station's EVSE: listed in the site file, or the place a station that
        registered itself took (the first free one, kept while this process runs: a station that drops
        its connection still holds its TxDefault); None where the site has none for it."""
        listed = self._listed.get(station_id)
        if listed is not None:
            return next((cp for cp in listed if cp.serves(station_id, evse_id)), None)
        return self._place(station_id)

    def _place(self, station_id: str) -> ChargingPoint | None:
        place = self.placed.get(station_id)
        if place is not None or station_id in self._unplaced:
            return place
        now = self._clock.now().isoformat()
        taken = set(self.placed.values())
        free = next((cp for cp in self._places if cp not in taken), None)
        if free is None:
            self._unplaced.add(station_id)
            event = (
                f"{now} station {station_id} is not in the site file and no place is free for it "
                f"(auto_register: {len(self._places)}): it is held at 0 A"
            )
            log.warning(event)
        else:
            self.placed[station_id] = free
            event = (
                f"{now} station {station_id} registered itself: it takes place {free.id} on {free.circuit}"
            )
            log.info(event)
        self.events.append(event)
        return free

    def _defaults_of(self, station_id: str) -> list[tuple[int, float, int]]:
        """The TxDefault limits a station holds: (EVSE, A, phases) — EVSE 0 (each of its EVSEs) for a
        station with one point, each listed EVSE for the others, 0 A for a station with no place."""
        listed = self._listed.get(station_id)
        points = listed if listed is not None else [p for p in [self._place(station_id)] if p is not None]
        if not points:
            return [(0, 0.0, 3)]
        return [(cp.evse_id or 0, self.safe_a.get(cp.id, 0.0), cp.phases) for cp in points]

    async def _tx_defaults(self) -> None:
        connected = set(self._control.connected_stations())
        self._defaults &= connected
        for station_id in sorted(connected - self._defaults):
            try:
                taken = True
                for evse_id, safe, phases in self._defaults_of(station_id):
                    power = safe * phases * self.site.voltage_v
                    accepted = await self._control.set_limit(
                        station_id, evse_id, safe, TX_DEFAULT, power_w=power
                    )
                    self._answered(station_id, accepted)
                    taken &= accepted
                if taken:
                    self._defaults.add(station_id)
            except (TimeoutError, OSError, LookupError) as err:
                log.warning("smart charging: %s did not take its TxDefault (%s)", station_id, err)

    # --- when a step cannot run ---

    async def fall_back(self, reason: str) -> ChargingStep:
        """Every session of the last step to its safe limit, for a step that failed (``reason``, e.g.
        ``fallback_store_unavailable``: the running sessions could not be read). Limits split from a grant
        that may no longer hold must not stay in force while the CSM cannot see the site; the next step
        that runs restores the grant, and its event says that this fallback ended. Sessions that started
        meanwhile are unknown here: their stations hold their safe TxDefault."""
        now = self._clock.now()
        self._pending = None
        events = []
        if reason != self._fallback:
            event = f"{now.isoformat()} all stations to their safe limit: {reason}"
            log.warning(event)
            events.append(event)
            self.events.append(event)
            self._fallback = reason
        limits = []
        for tx, point in self._known:
            current, why = self.safe_a.get(point.id, 0.0), reason
            if tx.id in self._suspended:
                current, why = 0.0, "suspended_overdraw"
            phases = self.live.get(tx.station_id, tx.evse_id).phases_used or point.phases
            try:
                limits.append(await self._send(tx, current, why, phases))
            except Exception as err:  # one station's failure must not keep the others at their last limit
                log.warning("smart charging: %s did not take its safe limit (%s)", tx.station_id, err)
                limits.append(StationLimit(tx.station_id, tx.evse_id, tx.id, current, why, True, False))
        await self._tx_defaults()
        last = self.last
        needed_w, wished_w = (last.needed_w, last.wished_w) if last is not None else (0.0, 0.0)
        step = ChargingStep(now, needed_w, wished_w, None, reason, tuple(limits), tuple(events))
        self.last = step
        return step


class ObservedRepository:
    """A ``CsmRepository`` that shows every meter sample to the live view before storing it."""

    def __init__(
        self, inner: CsmRepository, observe: Callable[[str, int, Sequence[MeterSample]], None]
    ) -> None:
        self._inner = inner
        self._observe = observe

    async def add_meter_values(
        self,
        station_id: str,
        evse_id: int,
        transaction_id: int | None,
        samples: Sequence[MeterSample],
        update: Callable[[TransactionRecord], TransactionRecord] | None = None,
    ) -> None:
        self._observe(station_id, evse_id, samples)
        await self._inner.add_meter_values(station_id, evse_id, transaction_id, samples, update)

    async def apply_event(self, event: TransactionEvent, update: TxUpdate) -> EventOutcome:
        self._observe(event.station_id, event.evse_id, event.samples)
        return await self._inner.apply_event(event, update)

    def __getattr__(self, name: str) -> Any:
        """Everything else goes to the repository as it is."""
        return getattr(self._inner, name)

"""Composition of a site's control: the CSM node (OCPP, store), its smart charging, and the EMS.

The two actors share nothing but the exchange (``exchange.ExchangeBus``): in one process an
``InMemoryExchange``, across processes MQTT. The smart-charging service sees the stations' meter values
through the repository the OCPP handlers write to (``ObservedRepository``), and reaches the stations
through ``OcppStationControl``. Billing hears of every session's start and end through the CSM's hooks,
and of every step's energy flows through ``record_sources``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chargeflow.billing.attribution import RegisterDeltas, Shares, SiteStep, site_step
from chargeflow.billing.service import BillingService
from chargeflow.clock import Clock
from chargeflow.csm.live import LiveState
from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.service import CsmConfig
from chargeflow.csm.smart_charging import ObservedRepository, SmartCharging, SmartChargingConfig
from chargeflow.ems.live_plan import LivePlanner
from chargeflow.ems.service import EmsConfig, EmsService, EssControl
from chargeflow.exchange import ExchangeBus
from chargeflow.protocols.ocpp.control import OcppStationControl
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.app import BillingHooks, CsmNode, build_csm
from chargeflow.site.measurement import SiteMeter
from chargeflow.site.model import Site

#: the smart charging's fallback where the running sessions could not be read (the store is down)
FALLBACK_STORE_UNAVAILABLE = "fallback_store_unavailable"
#: … and where any other part of a step failed
FALLBACK_STEP_FAILED = "fallback_step_failed"


class StepFailed(Exception):
    """A control step that could not run, with the fallback it calls for (``SmartCharging.fall_back``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class SiteControl:
    node: CsmNode
    charging: SmartCharging
    ems: EmsService | None  # None where another system takes the EMS role over MQTT
    repository: CsmRepository
    billing: BillingService | None = None
    _registers: RegisterDeltas = field(default_factory=RegisterDeltas)
    _metered: set[int] = field(default_factory=set)  # sessions whose register the attribution follows

    async def step(self) -> None:
        """One control step in one process: demand → grant → split and apply. ``StepFailed`` where the
        demand could not be made: its only I/O that raises is reading the running sessions (a publish
        over MQTT while the broker is away is dropped, ``protocols.mqtt.exchange``)."""
        try:
            await self.charging.publish_demand()
        except Exception as err:
            raise StepFailed(FALLBACK_STORE_UNAVAILABLE) from err
        if self.ems is not None:
            await self.ems.step()
        await self.charging.apply()

    async def record_sources(
        self, step_s: float, pv_w: float, battery_w: float, grid_w: float
    ) -> tuple[SiteStep, dict[str, Shares]] | None:
        """After a step has run: the share of PV, battery and grid in each session's energy over it, by
        the site's rule, added to the sessions' totals. The site meter gives the step's mean PV, battery
        (positive: discharging) and grid (positive: import) power; each session's energy is the rise of
        its station's register, up to its meterStop for a session that ended in the step."""
        if self.billing is None:
            return None
        registers: dict[str, tuple[int, int]] = {}
        running = await self.repository.list_transactions(active=True)
        ended = self._metered - {tx.id for tx in running}
        for tx_id in ended:
            tx = await self.repository.get_transaction(tx_id)
            if tx is not None and tx.meter_start_wh is not None and tx.meter_stop_wh is not None:
                registers[str(tx_id)] = (tx.meter_start_wh, tx.meter_stop_wh)
        for tx in running:
            if tx.meter_start_wh is not None and tx.meter_stop_wh is not None:
                registers[str(tx.id)] = (tx.meter_start_wh, tx.meter_stop_wh)
        step = site_step(step_s, pv_w, battery_w, grid_w, self._registers.step(registers))
        for tx_id in ended:
            self._registers.forget(str(tx_id))
        self._metered = {tx.id for tx in running}
        return step, await self.billing.record_step(step)


def build_site_control(
    site: Site,
    repository: CsmRepository,
    clock: Clock,
    csm_bus: ExchangeBus,
    ems_bus: ExchangeBus | None,
    meter: SiteMeter,
    csm_config: CsmConfig,
    ocpp_config: OcppServerConfig,
    charging_config: SmartChargingConfig,
    ems_config: EmsConfig,
    ess: EssControl | None = None,
    operation_timeout_s: float = 10.0,
    billing: BillingService | None = None,
    site_planner: LivePlanner | None = None,
) -> SiteControl:
    live = LiveState()
    hooks = BillingHooks(billing) if billing is not None else None
    node = build_csm(
        ObservedRepository(repository, live.observe),
        clock,
        csm_config,
        ocpp_config,
        operation_timeout_s,
        hooks,
    )
    control = OcppStationControl(node.operations, node.service.record_charging_profile)
    charging = SmartCharging(site, repository, csm_bus, control, clock, charging_config, meter, live)
    ems = (
        EmsService(site, meter, ems_bus, clock, ems_config, ess, site_planner)
        if ems_bus is not None
        else None
    )
    return SiteControl(node, charging, ems, repository, billing)

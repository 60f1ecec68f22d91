"""Composition of a site's control: the CSM node (OCPP, store), its smart charging, and the EMS.

The two actors share nothing but the exchange (``exchange.ExchangeBus``): in one process an
``InMemoryExchange``, across processes MQTT. The smart-charging service sees the stations' meter values
through the repository the OCPP handlers write to (``ObservedRepository``), and reaches the stations
through ``OcppStationControl``.
"""

from __future__ import annotations

from dataclasses import dataclass

from chargeflow.app import CsmNode, build_csm
from chargeflow.clock import Clock
from chargeflow.csm.live import LiveState
from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.service import CsmConfig
from chargeflow.csm.smart_charging import ObservedRepository, SmartCharging, SmartChargingConfig
from chargeflow.ems.service import EmsConfig, EmsService, EssControl
from chargeflow.exchange import ExchangeBus
from chargeflow.protocols.ocpp.control import OcppStationControl
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.site.measurement import SiteMeter
from chargeflow.site.model import Site


@dataclass(slots=True)
class SiteControl:
    node: CsmNode
    charging: SmartCharging
    ems: EmsService | None  # None where another system takes the EMS role over MQTT
    repository: CsmRepository

    async def step(self) -> None:
        """One control step in one process: demand → grant → split and apply."""
        await self.charging.publish_demand()
        if self.ems is not None:
            await self.ems.step()
        await self.charging.apply()


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
) -> SiteControl:
    live = LiveState()
    node = build_csm(
        ObservedRepository(repository, live.observe), clock, csm_config, ocpp_config, operation_timeout_s
    )
    control = OcppStationControl(node.operations, node.service.record_charging_profile)
    charging = SmartCharging(site, repository, csm_bus, control, clock, charging_config, meter, live)
    ems = EmsService(site, meter, ems_bus, clock, ems_config, ess) if ems_bus is not None else None
    return SiteControl(node, charging, ems, repository)

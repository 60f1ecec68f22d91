"""``serve``'s runtime: the CSM alone, or with a site file the whole site on the real clock.

The same actors as the demo (``runtime.control.build_site_control``) and the same loop (``runtime.site``); the
devices are the site's own: its meters as the site file names them, or, where it names none, the stations'
meters with the building at its declared peak.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from zoneinfo import ZoneInfo

from chargeflow.billing.service import BillingService
from chargeflow.clock import Clock, SystemClock
from chargeflow.csm.service import CsmConfig, CsmService
from chargeflow.csm.smart_charging import SmartChargingConfig
from chargeflow.csm.split import Strategy
from chargeflow.ems.service import EmsConfig
from chargeflow.exchange import ExchangeBus, InMemoryExchange
from chargeflow.protocols.mqtt.exchange import MqttExchange, settings_from_url
from chargeflow.protocols.ocpp.server import OcppServerConfig, TlsSettings
from chargeflow.runtime.app import (
    BillingHooks,
    CsmNode,
    ServeSettings,
    Stores,
    billing_rules,
    build_csm,
    http_port,
    http_server,
    open_stores,
    request_ids,
)
from chargeflow.runtime.control import build_site_control
from chargeflow.runtime.devices import site_meter
from chargeflow.runtime.site import RunningSiteView, SiteLoop
from chargeflow.site.config import (
    ConfigError,
    StationCredentials,
    load_credentials,
    load_energy_prices,
    load_site,
)
from chargeflow.site.model import Site
from chargeflow.web.api import create_api
from chargeflow.web.auth import DriverLinks, OwnerAuth
from chargeflow.web.live import FlowHistory
from chargeflow.web.ui import UiSettings

log = logging.getLogger(__name__)


async def _register_site_stations(
    service: CsmService, credentials: Sequence[StationCredentials], tls: TlsSettings | None
) -> None:
    """The site file's stations are the ones this CSM knows from the start, with the credentials the
    file gives them; one that has none is accepted by its id alone (or by a password set through the API),
    and the start-up lines say so."""
    profile = 0 if tls is None else tls.profile
    for c in credentials:
        if c.password_hash is not None:
            await service.set_password_hash(c.station_id, c.password_hash)
            continue
        station = await service.repository.get_station(c.station_id)
        if station is None:
            station = await service.register_station(c.station_id, None)
        if profile < 3 and station.password_hash is None:
            log.warning(
                "station %s has no credentials: any client that connects as %s is accepted "
                "(give it a password_hash in the site file, from `chargeflow station-password`)",
                c.station_id,
                c.station_id,
            )


def certificate_pins(credentials: Sequence[StationCredentials], tls: TlsSettings | None) -> dict[str, str]:
    """The stations' pinned client certificates; a pin needs security profile 3 (``--tls-client-ca``)."""
    pins = {c.station_id: c.certificate_sha256 for c in credentials if c.certificate_sha256 is not None}
    if pins and (tls is None or tls.profile < 3):
        raise ConfigError(
            f"stations {', '.join(sorted(pins))} pin a client certificate (certificate_sha256): serve them "
            "with security profile 3 (--tls-cert, --tls-key and --tls-client-ca)"
        )
    return pins


async def serve(settings: ServeSettings, ready: Callable[[CsmNode, int, int], None] | None = None) -> None:
    """Run the OCPP endpoint and the REST API until cancelled; with a site file, the whole site: its
    control loop (demand → grant → split → charging profiles), its EMS, billing and the web pages."""
    clock = SystemClock()
    rules = billing_rules(settings.site_file)
    site = load_site(settings.site_file) if settings.site_file is not None else None
    credentials = load_credentials(settings.site_file) if settings.site_file is not None else ()
    zone = ZoneInfo(site.timezone) if site is not None else ZoneInfo("UTC")
    ocpp_config = OcppServerConfig(
        host=settings.host,
        port=settings.ocpp_port,
        call_timeout_s=settings.operation_timeout_s,
        default_policy=settings.default_policy,
        stations=settings.station_policies,
        tls=settings.tls,
        certificate_pins=certificate_pins(credentials, settings.tls),
        live_window_s=settings.heartbeat_interval_s + 60.0,
        trusted_proxies=settings.trusted_proxies,
        budgets=settings.budgets.ocpp,
    )
    csm_config = CsmConfig(
        heartbeat_interval_s=settings.heartbeat_interval_s,
        # a site that keeps places for stations that register themselves takes them
        auto_register=settings.auto_register
        or (site is not None and any(p.auto for p in site.charging_points)),
    )
    async with contextlib.AsyncExitStack() as stack:
        stores = await stack.enter_async_context(open_stores(settings.database_url))
        billing = BillingService(stores.billing, rules, zone)
        loop: SiteLoop | None = None
        wake: asyncio.Event | None = None
        ui: UiSettings | None = None
        if site is None:
            node = build_csm(
                stores.repository,
                clock,
                csm_config,
                ocpp_config,
                operation_timeout_s=settings.operation_timeout_s,
                hooks=BillingHooks(billing),
            )
        else:
            loop, ui, wake = await _site_runtime(
                stack, settings, site, stores, billing, clock, csm_config, ocpp_config
            )
            node = loop.control.node
        await billing.catch_up()  # sessions that ended while no CDR could be built (a crash, a restart)
        if site is not None:
            await _register_site_stations(node.service, credentials, settings.tls)
        api = create_api(
            node.service,
            node.operations,
            settings.admin_token,
            request_ids(clock),
            ui,
            billing=billing,
            budgets=settings.budgets.http,
        )
        http = http_server(api, settings.host, settings.http_port, settings.trusted_proxies)
        async with asyncio.TaskGroup() as group:
            group.create_task(node.ocpp.serve(), name="ocpp")
            group.create_task(http.serve(), name="http")
            await node.ocpp.started.wait()
            await asyncio.wait_for(http.listening.wait(), 30)
            if loop is not None:
                group.create_task(loop.run(wake), name="site-control")
            if ready is not None:
                assert node.ocpp.port is not None
                ready(node, node.ocpp.port, http_port(http))


async def _site_runtime(
    stack: contextlib.AsyncExitStack,
    settings: ServeSettings,
    site: Site,
    stores: Stores,
    billing: BillingService,
    clock: Clock,
    csm_config: CsmConfig,
    ocpp_config: OcppServerConfig,
) -> tuple[SiteLoop, UiSettings | None, asyncio.Event]:
    """The site's control loop and web pages over the CSM's store."""
    assert settings.site_file is not None
    ev_power = [lambda: 0.0]
    setup = await stack.enter_async_context(
        site_meter(settings.site_file, site, clock, lambda: ev_power[0]())
    )
    log.info("site %s: %s", site.id, setup.description)
    csm_bus: ExchangeBus
    ems_bus: ExchangeBus | None
    if settings.ems_url is None:
        csm_bus = ems_bus = InMemoryExchange()
    else:  # another process (ours: ``chargeflow ems``, or another vendor's) takes the EMS role
        mqtt = settings_from_url(settings.ems_url)
        csm_bus, ems_bus = await stack.enter_async_context(MqttExchange.connect(mqtt, site.id)), None
        log.info("site %s: the EMS is reached over %s", site.id, settings.ems_url)
    control = build_site_control(
        site,
        stores.repository,
        clock,
        csm_bus,
        ems_bus,
        setup.meter,
        csm_config,
        ocpp_config,
        SmartChargingConfig(
            strategy=Strategy(settings.strategy),
            step_s=settings.step_s,
            safe_current_a=None,
            prices=load_energy_prices(settings.site_file),
        ),
        EmsConfig(step_s=settings.step_s),
        ess=setup.ess,
        operation_timeout_s=settings.operation_timeout_s,
        billing=billing,
    )
    charging = control.charging
    ev_power[0] = lambda: charging.ev_power_w
    history = FlowHistory(store=stores.flows)
    await history.load_recent(clock.now())
    loop = SiteLoop(control, setup.meter, clock, history, settings.step_s, metered=setup.metered)
    ui = None
    if settings.owner_password:
        view = RunningSiteView(site, clock, control, history)
        ui = UiSettings(
            view,
            OwnerAuth(settings.owner_password),
            links=DriverLinks(settings.link_key),
            billing=billing,
            public_url=settings.public_url,
        )
    return loop, ui, setup.wake

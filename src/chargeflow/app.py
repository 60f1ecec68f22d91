"""Composition root: builds the CSM, its repository and the OCPP server from configuration."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from chargeflow.clock import Clock, SystemClock
from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.service import CsmConfig, CsmService
from chargeflow.protocols.ocpp.frames import OcppVersion
from chargeflow.protocols.ocpp.handlers2 import V2Handlers
from chargeflow.protocols.ocpp.handlers16 import V16Handlers
from chargeflow.protocols.ocpp.operations import StationOperations
from chargeflow.protocols.ocpp.server import OcppServer, OcppServerConfig, StationPolicy
from chargeflow.site.config import load_site
from chargeflow.store.database import DEFAULT_URL, make_engine, migrate
from chargeflow.store.sql import SqlRepository
from chargeflow.web.api import create_api


def message_ids(prefix: str) -> Callable[[], str]:
    """Unique ids for our CALLs: a random per-process prefix and a counter (no uuid per message)."""
    counter = itertools.count(1)
    return lambda: f"{prefix}-{next(counter)}"


@dataclass(slots=True)
class CsmNode:
    """One running CSM: the service, the OCPP endpoint and the operations on stations."""

    service: CsmService
    ocpp: OcppServer
    operations: StationOperations


def build_csm(
    repository: CsmRepository,
    clock: Clock,
    csm_config: CsmConfig,
    ocpp_config: OcppServerConfig,
    operation_timeout_s: float = 30.0,
) -> CsmNode:
    service = CsmService(repository, clock, csm_config, new_salt=lambda: secrets.token_bytes(16))
    v2 = V2Handlers(service).routes()
    routes = {OcppVersion.V16: V16Handlers(service).routes(), OcppVersion.V201: v2, OcppVersion.V21: v2}
    server = OcppServer(ocpp_config, routes, service, message_ids(secrets.token_hex(4)))
    return CsmNode(service, server, StationOperations(server, operation_timeout_s))


@dataclass(frozen=True, slots=True)
class ServeSettings:
    host: str = "127.0.0.1"
    ocpp_port: int = 9000
    http_port: int = 8000
    database_url: str = DEFAULT_URL
    admin_token: str = ""
    site_file: Path | None = None
    auto_register: bool = False
    heartbeat_interval_s: int = 300
    operation_timeout_s: float = 30.0
    default_policy: StationPolicy = field(default_factory=StationPolicy)
    station_policies: Mapping[str, StationPolicy] = field(default_factory=dict)


def request_ids(clock: Clock) -> Callable[[], int]:
    """Ids for remote starts and charging profiles: seconds since 2020 at startup, then counting up,
    so that a restarted server does not reuse the ids it sent before (OCPP int32 range until 2088)."""
    start = int(clock.now().timestamp()) - 1_577_836_800
    counter = itertools.count(start)
    return lambda: next(counter)


async def _register_site_stations(service: CsmService, site_file: Path) -> None:
    """The site's charging points are the stations this CSM knows from the start."""
    site = load_site(site_file)
    for point in site.charging_points:
        if await service.repository.get_station(point.id) is None:
            await service.register_station(point.id, None)


async def serve(settings: ServeSettings, ready: Callable[[CsmNode, int, int], None] | None = None) -> None:
    """Run the OCPP endpoint and the REST API until cancelled."""
    clock = SystemClock()
    engine = make_engine(settings.database_url)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        await migrate(engine)
        repository = await stack.enter_async_context(SqlRepository.open(engine))
        node = build_csm(
            repository,
            clock,
            CsmConfig(
                heartbeat_interval_s=settings.heartbeat_interval_s, auto_register=settings.auto_register
            ),
            OcppServerConfig(
                host=settings.host,
                port=settings.ocpp_port,
                call_timeout_s=settings.operation_timeout_s,
                default_policy=settings.default_policy,
                stations=settings.station_policies,
            ),
            operation_timeout_s=settings.operation_timeout_s,
        )
        if settings.site_file is not None:
            await _register_site_stations(node.service, settings.site_file)
        api = create_api(node.service, node.operations, settings.admin_token, request_ids(clock))
        http = HttpServer(
            uvicorn.Config(
                api, host=settings.host, port=settings.http_port, log_level="warning", lifespan="off"
            )
        )
        async with asyncio.TaskGroup() as group:
            group.create_task(node.ocpp.serve(), name="ocpp")
            group.create_task(http.serve(), name="http")
            await node.ocpp.started.wait()
            await asyncio.wait_for(http.listening.wait(), 30)
            if ready is not None:
                assert node.ocpp.port is not None
                ready(node, node.ocpp.port, http_port(http))


class HttpServer(uvicorn.Server):
    """uvicorn's server with an event set once its sockets listen."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


def http_port(server: uvicorn.Server) -> int:
    for listener in server.servers:
        for sock in listener.sockets:
            port: int = sock.getsockname()[1]
            return port
    raise RuntimeError("the HTTP server has no socket")

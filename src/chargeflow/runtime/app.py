"""Composition root: builds the CSM, its repository and the OCPP server from configuration."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from chargeflow.billing.schema import BillingInputError
from chargeflow.billing.service import BillingService
from chargeflow.billing.setup import BillingRules, rules_from_config
from chargeflow.clock import Clock
from chargeflow.csm.model import TransactionRecord
from chargeflow.csm.ports import CsmRepository, SessionHooks
from chargeflow.csm.service import CsmConfig, CsmService
from chargeflow.protocols.ocpp.budgets import OcppBudgets
from chargeflow.protocols.ocpp.frames import OcppVersion
from chargeflow.protocols.ocpp.handlers2 import V2Handlers
from chargeflow.protocols.ocpp.handlers16 import V16Handlers
from chargeflow.protocols.ocpp.operations import StationOperations
from chargeflow.protocols.ocpp.server import OcppServer, OcppServerConfig, StationPolicy, TlsSettings
from chargeflow.site.config import ConfigError, load_billing
from chargeflow.store.billing import SqlBillingStore, session_start
from chargeflow.store.database import DEFAULT_URL, make_engine, migrate
from chargeflow.store.flows import FlowStore
from chargeflow.store.sql import SqlRepository
from chargeflow.store.writer import GroupWriter
from chargeflow.web.limits import HttpBudgets


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
    hooks: SessionHooks | None = None,
) -> CsmNode:
    service = CsmService(repository, clock, csm_config, lambda: secrets.token_bytes(16), hooks)
    v2 = V2Handlers(service).routes()
    routes = {OcppVersion.V16: V16Handlers(service).routes(), OcppVersion.V201: v2, OcppVersion.V21: v2}
    server = OcppServer(ocpp_config, routes, service, message_ids(secrets.token_hex(4)))
    return CsmNode(service, server, StationOperations(server, operation_timeout_s))


class BillingHooks:
    """The CSM's session hooks, answered by billing: the tariff at the start, the CDR at the end."""

    def __init__(self, billing: BillingService) -> None:
        self._billing = billing

    async def session_started(self, tx: TransactionRecord) -> None:
        await self._billing.session_started(session_start(tx))

    async def session_ended(self, tx: TransactionRecord) -> None:
        await self._billing.session_ended(str(tx.id))


def billing_rules(site_file: Path | None) -> BillingRules:
    """The site file's ``billing:`` section as rules (none: no tariffs, sessions are free)."""
    if site_file is None:
        return BillingRules()
    try:
        return rules_from_config(load_billing(site_file), str(site_file))
    except BillingInputError as err:
        raise ConfigError(str(err)) from None


@dataclass(slots=True)
class Stores:
    """The CSM's and billing's stores and the site's flow history on one database, sharing its one writer."""

    repository: SqlRepository
    billing: SqlBillingStore
    flows: FlowStore


@contextlib.asynccontextmanager
async def open_stores(database_url: str, **engine_options: Any) -> AsyncIterator[Stores]:
    """The database brought to the newest schema, and its stores for the life of the block."""
    engine = make_engine(database_url, **engine_options)
    try:
        await migrate(engine)
        async with GroupWriter.open(engine) as writer:
            repository = SqlRepository(engine, writer)
            flows = FlowStore(engine, writer)
            try:
                yield Stores(repository, SqlBillingStore(engine, writer, repository), flows)
            finally:
                await flows.flush(5.0)  # the last steps' samples, before the writer stops
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class Budgets:
    """What one station connection and one HTTP request may cost (issue 13, item 6), in one place."""

    ocpp: OcppBudgets = field(default_factory=OcppBudgets)
    http: HttpBudgets = field(default_factory=HttpBudgets)


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
    tls: TlsSettings | None = None  # wss://: security profile 2, or 3 with a client CA
    step_s: float = 10.0  # the site's control step (with a site file)
    strategy: str = "edf"  # how the grant is split (``csm.split.Strategy``)
    owner_password: str = ""  # the dashboard's login (with a site file); none: no dashboard
    public_url: str | None = None  # the address drivers reach the web pages at (QR codes, links)
    link_key: bytes | None = None  # the key of drivers' session links; None: new at every start
    trusted_proxies: tuple[str, ...] = ()  # whose X-Forwarded-For names the client (``http_server``)
    ems_url: str | None = None  # mqtt://…: the EMS runs apart and is reached over MQTT; None: in-process
    budgets: Budgets = field(default_factory=Budgets)


def request_ids(clock: Clock) -> Callable[[], int]:
    """Ids for remote starts and charging profiles: seconds since 2020 at startup, then counting up,
    so that a restarted server does not reuse the ids it sent before (OCPP int32 range until 2088)."""
    start = int(clock.now().timestamp()) - 1_577_836_800
    counter = itertools.count(start)
    return lambda: next(counter)


def http_server(api: Any, host: str, port: int, trusted_proxies: Sequence[str] = ()) -> HttpServer:
    """The web server of the API and the pages; the dashboard's event streams never end by themselves,
    so a stop gives them 2 s.

    ``X-Forwarded-For`` names the client only in requests from ``trusted_proxies`` (addresses or
    networks the operator names), and then the last address in it that is not one of them; with none,
    the header is ignored. uvicorn's own default trusts it from 127.0.0.1 (or $FORWARDED_ALLOW_IPS),
    so that anyone who reaches the server over loopback (a TLS tunnel, a local proxy that passes the
    header on) could name any address and so walk around the owner login's lockout per address."""
    config = uvicorn.Config(
        api,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies),
    )
    return HttpServer(config)


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

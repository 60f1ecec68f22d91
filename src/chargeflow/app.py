"""Composition root: builds the CSM, its repository and the OCPP server from configuration."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from chargeflow.clock import Clock
from chargeflow.csm.ports import CsmRepository
from chargeflow.csm.service import CsmConfig, CsmService
from chargeflow.protocols.ocpp.frames import OcppVersion
from chargeflow.protocols.ocpp.handlers2 import V2Handlers
from chargeflow.protocols.ocpp.handlers16 import V16Handlers
from chargeflow.protocols.ocpp.operations import StationOperations
from chargeflow.protocols.ocpp.server import OcppServer, OcppServerConfig


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

"""OCPP 1.6J messages from the station: map the payload to CSM types, make one call, map the answer back."""

from __future__ import annotations

from typing import Any

from chargeflow.csm.model import (
    AuthDecision,
    AuthStatus,
    BootInfo,
    ConnectorStatus,
    StartRequest,
    StopRequest,
)
from chargeflow.csm.service import CsmService
from chargeflow.protocols.ocpp.connection import Handler, StationConnection
from chargeflow.protocols.ocpp.wire import (
    boot_answer,
    check_energy_wh,
    check_id,
    format_time,
    parse_time,
    samples_v16,
    without_nul,
)

Payload = dict[str, Any]


def id_tag_info(decision: AuthDecision) -> Payload:
    # 1.6 has no "Unknown": an unknown tag is Invalid.
    status = AuthStatus.INVALID if decision.status is AuthStatus.UNKNOWN else decision.status
    info: Payload = {"status": str(status)}
    if decision.expiry is not None:
        info["expiryDate"] = format_time(decision.expiry)
    return info


class V16Handlers:
    def __init__(self, service: CsmService) -> None:
        self._csm = service

    def routes(self) -> dict[str, Handler]:
        routes: dict[str, Handler] = {
            "BootNotification": self.boot_notification,
            "Heartbeat": self.heartbeat,
            "StatusNotification": self.status_notification,
            "Authorize": self.authorize,
            "StartTransaction": self.start_transaction,
            "StopTransaction": self.stop_transaction,
            "MeterValues": self.meter_values,
            "DataTransfer": self.data_transfer,
            "DiagnosticsStatusNotification": self.acknowledge,
            "FirmwareStatusNotification": self.acknowledge,
        }
        return {action: without_nul(handler) for action, handler in routes.items()}

    async def boot_notification(self, conn: StationConnection, p: Payload) -> Payload:
        info = BootInfo(
            vendor=p["chargePointVendor"],
            model=p["chargePointModel"],
            serial_number=p.get("chargePointSerialNumber") or p.get("chargeBoxSerialNumber"),
            firmware_version=p.get("firmwareVersion"),
        )
        return boot_answer(await self._csm.boot(conn.station_id, conn.version, info))

    async def heartbeat(self, conn: StationConnection, p: Payload) -> Payload:
        return {"currentTime": format_time(await self._csm.heartbeat(conn.station_id))}

    async def status_notification(self, conn: StationConnection, p: Payload) -> Payload:
        connector = check_id(p["connectorId"], "connectorId")
        at = parse_time(p["timestamp"], self._csm.now()) if "timestamp" in p else None
        await self._csm.status(
            conn.station_id, ConnectorStatus(connector, connector, p["status"], at, p.get("errorCode"))
        )
        return {}

    async def authorize(self, conn: StationConnection, p: Payload) -> Payload:
        return {"idTagInfo": id_tag_info(await self._csm.authorize(p["idTag"]))}

    async def start_transaction(self, conn: StationConnection, p: Payload) -> Payload:
        start = StartRequest(
            station_id=conn.station_id,
            connector_id=check_id(p["connectorId"], "connectorId"),
            id_token=p["idTag"],
            meter_start_wh=check_energy_wh(p["meterStart"], "meterStart"),
            timestamp=parse_time(p["timestamp"], self._csm.now()),
            reservation_id=check_id(p["reservationId"], "reservationId") if "reservationId" in p else None,
        )
        transaction_id, decision = await self._csm.start_transaction(start)
        return {"transactionId": transaction_id, "idTagInfo": id_tag_info(decision)}

    async def stop_transaction(self, conn: StationConnection, p: Payload) -> Payload:
        now = self._csm.now()
        stop = StopRequest(
            station_id=conn.station_id,
            transaction_id=check_id(p["transactionId"], "transactionId"),
            meter_stop_wh=check_energy_wh(p["meterStop"], "meterStop"),
            timestamp=parse_time(p["timestamp"], now),
            reason=p.get("reason"),
            id_token=p.get("idTag"),
            samples=samples_v16(p.get("transactionData", []), now),
        )
        decision = await self._csm.stop_transaction(stop)
        return {"idTagInfo": id_tag_info(decision)} if decision is not None else {}

    async def meter_values(self, conn: StationConnection, p: Payload) -> Payload:
        connector = check_id(p["connectorId"], "connectorId")
        transaction = check_id(p["transactionId"], "transactionId") if "transactionId" in p else None
        samples = samples_v16(p["meterValue"], self._csm.now())
        await self._csm.meter_values(conn.station_id, connector, transaction, samples)
        return {}

    async def data_transfer(self, conn: StationConnection, p: Payload) -> Payload:
        return {"status": "UnknownVendorId"}

    async def acknowledge(self, conn: StationConnection, p: Payload) -> Payload:
        return {}

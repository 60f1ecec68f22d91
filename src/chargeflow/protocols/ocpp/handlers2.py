"""OCPP 2.0.1 and 2.1 messages from the station (the same where the versions agree)."""

from __future__ import annotations

from typing import Any

from chargeflow.csm.model import (
    AuthDecision,
    BootInfo,
    ChargingNeeds,
    ConnectorStatus,
    TransactionEvent,
    TxEventType,
)
from chargeflow.csm.service import CsmService
from chargeflow.protocols.ocpp.connection import Handler, StationConnection
from chargeflow.protocols.ocpp.wire import (
    boot_answer,
    check_energy_wh,
    check_id,
    format_time,
    parse_time,
    samples_v2,
    without_nul,
)

Payload = dict[str, Any]

_ACKNOWLEDGED = (
    "NotifyReport",
    "NotifyEvent",
    "NotifyMonitoringReport",
    "NotifyChargingLimit",
    "ClearedChargingLimit",
    "ReportChargingProfiles",
    "SecurityEventNotification",
    "FirmwareStatusNotification",
    "LogStatusNotification",
    "NotifyDisplayMessages",
    "NotifyCustomerInformation",
)


def id_token_info(decision: AuthDecision) -> Payload:
    info: Payload = {"status": str(decision.status)}
    if decision.expiry is not None:
        info["cacheExpiryDateTime"] = format_time(decision.expiry)
    return info


class V2Handlers:
    def __init__(self, service: CsmService) -> None:
        self._csm = service

    def routes(self) -> dict[str, Handler]:
        routes: dict[str, Handler] = {
            "BootNotification": self.boot_notification,
            "Heartbeat": self.heartbeat,
            "StatusNotification": self.status_notification,
            "Authorize": self.authorize,
            "TransactionEvent": self.transaction_event,
            "MeterValues": self.meter_values,
            "NotifyEVChargingNeeds": self.notify_ev_charging_needs,
            "NotifyEVChargingSchedule": self.notify_ev_charging_schedule,
            "DataTransfer": self.data_transfer,
            "ReservationStatusUpdate": self.reservation_status_update,
        }
        for action in _ACKNOWLEDGED:
            routes[action] = self.acknowledge
        return {action: without_nul(handler) for action, handler in routes.items()}

    async def boot_notification(self, conn: StationConnection, p: Payload) -> Payload:
        station = p["chargingStation"]
        info = BootInfo(
            vendor=station["vendorName"],
            model=station["model"],
            serial_number=station.get("serialNumber"),
            firmware_version=station.get("firmwareVersion"),
        )
        return boot_answer(await self._csm.boot(conn.station_id, conn.version, info))

    async def heartbeat(self, conn: StationConnection, p: Payload) -> Payload:
        return {"currentTime": format_time(await self._csm.heartbeat(conn.station_id))}

    async def status_notification(self, conn: StationConnection, p: Payload) -> Payload:
        status = ConnectorStatus(
            check_id(p["evseId"], "evseId"),
            check_id(p["connectorId"], "connectorId"),
            p["connectorStatus"],
            parse_time(p["timestamp"], self._csm.now()),
        )
        await self._csm.status(conn.station_id, status)
        return {}

    async def authorize(self, conn: StationConnection, p: Payload) -> Payload:
        return {"idTokenInfo": id_token_info(await self._csm.authorize(p["idToken"]["idToken"]))}

    async def transaction_event(self, conn: StationConnection, p: Payload) -> Payload:
        info = p["transactionInfo"]
        evse = p.get("evse", {})
        token = p.get("idToken", {}).get("idToken")
        now = self._csm.now()
        event = TransactionEvent(
            station_id=conn.station_id,
            external_id=info["transactionId"],
            seq_no=check_id(p["seqNo"], "seqNo"),
            event_type=TxEventType(p["eventType"]),
            timestamp=parse_time(p["timestamp"], now),
            trigger_reason=p["triggerReason"],
            evse_id=check_id(evse.get("id", 0), "evse.id"),
            connector_id=check_id(evse.get("connectorId", 0), "evse.connectorId"),
            id_token=token,
            stopped_reason=info.get("stoppedReason"),
            offline=bool(p.get("offline", False)),
            samples=samples_v2(p.get("meterValue", []), now),
        )
        decision = await self._csm.transaction_event(event)
        return {"idTokenInfo": id_token_info(decision)} if decision is not None else {}

    async def meter_values(self, conn: StationConnection, p: Payload) -> Payload:
        evse = check_id(p["evseId"], "evseId")
        await self._csm.meter_values(
            conn.station_id, evse, None, samples_v2(p["meterValue"], self._csm.now())
        )
        return {}

    async def notify_ev_charging_needs(self, conn: StationConnection, p: Payload) -> Payload:
        needs = p["chargingNeeds"]
        params = needs.get("acChargingParameters") or needs.get("dcChargingParameters") or {}
        energy = params.get("energyAmount")
        departure = needs.get("departureTime")
        accepted = await self._csm.charging_needs(
            ChargingNeeds(
                station_id=conn.station_id,
                evse_id=check_id(p["evseId"], "evseId"),
                departure_time=parse_time(departure, self._csm.now(), "departureTime") if departure else None,
                energy_need_wh=check_energy_wh(energy, "energyAmount") if energy is not None else None,
            )
        )
        return {"status": "Accepted" if accepted else "Rejected"}

    async def notify_ev_charging_schedule(self, conn: StationConnection, p: Payload) -> Payload:
        return {"status": "Accepted"}

    async def reservation_status_update(self, conn: StationConnection, p: Payload) -> Payload:
        await self._csm.reservation_notice(
            conn.station_id, check_id(p["reservationId"], "reservationId"), p["reservationUpdateStatus"]
        )
        return {}

    async def data_transfer(self, conn: StationConnection, p: Payload) -> Payload:
        return {"status": "UnknownVendorId"}

    async def acknowledge(self, conn: StationConnection, p: Payload) -> Payload:
        return {}

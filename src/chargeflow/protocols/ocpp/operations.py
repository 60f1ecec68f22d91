"""Operations the CSM sends to a station, mapped to the station's OCPP version.

Each returns the station's own answer (the CALLRESULT payload) or raises ``StationOffline``,
``CallTimeout`` or ``CallRejected``; every call has a bounded wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chargeflow.csm.model import AuthDecision, IdTokenRecord
from chargeflow.protocols.ocpp.connection import StationConnection
from chargeflow.protocols.ocpp.frames import OcppVersion
from chargeflow.protocols.ocpp.handlers2 import id_token_info
from chargeflow.protocols.ocpp.handlers16 import id_tag_info
from chargeflow.protocols.ocpp.server import OcppServer
from chargeflow.protocols.ocpp.wire import format_time

Payload = dict[str, Any]


def decide_for_list(token: IdTokenRecord) -> AuthDecision:
    """A list entry carries the token's own status and expiry; the station applies the expiry."""
    return AuthDecision(token.status, token.expiry)


class StationOffline(LookupError):
    """The station has no open connection."""


class MissingTransaction(ValueError):
    """A TxProfile for an OCPP 2.x station must name its transaction (K01.FR.03)."""


_STATION_MAX = ("ChargePointMaxProfile", "ChargingStationMaxProfile")
#: One profile id per purpose and stack level, so that each new limit replaces the last of its kind: a
#: 2.0.1 station refuses a second profile of the same purpose and stack level under another id
#: (K01.FR.06). A TxDefault on stack level 1 is a session's bounded limit for a station that takes no Tx
#: profiles, above the safe TxDefault on level 0 that it falls back to.
PROFILE_IDS = {
    ("ChargePointMaxProfile", 0): 1,
    ("TxDefaultProfile", 0): 2,
    ("TxProfile", 0): 3,
    ("TxDefaultProfile", 1): 4,
}


def profile_id_for(purpose: str, evse_id: int, stack_level: int = 0) -> int:
    """The purpose's id on EVSE 0 or 1; on EVSE n ≥ 2 its own (10·n + the purpose's), because a profile
    replaces the station's profile of the same id whichever EVSE that was on (1.6 3.13.2, 2.0.1
    K01.FR.05): one id for all EVSEs would leave only the last EVSE limited."""
    base = PROFILE_IDS[(purpose, stack_level)]
    return base if evse_id <= 1 else 10 * evse_id + base


STATION_MAX_START = "2020-01-01T00:00:00.000Z"


def charging_profile(
    version: OcppVersion,
    profile_id: int,
    purpose: str,
    limit: float,
    unit: str,
    transaction_id: str | None = None,
    stack_level: int = 0,
    valid_to: datetime | None = None,
) -> Payload:
    """A one-period profile holding ``limit`` (A or W) until replaced, or until ``valid_to`` (the station
    then falls back to the profiles below it: the CSM renews a bounded limit while it runs).

    Tx and TxDefault profiles are Relative: they start with the transaction. A station-maximum profile is
    Absolute, because a 2.0.1 station must reject a Relative one (K01.FR.38); it starts at a fixed instant
    in the past, so that it is in force at once whatever the station's clock says (clocks on real sites
    disagree by minutes, and one that runs behind ours would otherwise wait for the start).
    A TxProfile names its transaction (an integer in 1.6, the station's string in 2.x).
    """
    period = {"startPeriod": 0, "limit": round(limit, 1)}
    absolute = purpose in _STATION_MAX
    start = {"startSchedule": STATION_MAX_START} if absolute else {}
    kind = "Absolute" if absolute else "Relative"
    profile: Payload
    bound = {} if valid_to is None else {"validTo": format_time(valid_to)}
    if version is OcppVersion.V16:
        profile = {
            "chargingProfileId": profile_id,
            "stackLevel": stack_level,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind,
            "chargingSchedule": {"chargingRateUnit": unit, "chargingSchedulePeriod": [period], **start},
            **bound,
        }
        if transaction_id is not None:
            profile["transactionId"] = int(transaction_id)
        return profile
    if purpose == "TxProfile" and transaction_id is None:
        raise MissingTransaction("an OCPP 2.x TxProfile names its transaction: give transaction_id")
    profile = {
        "id": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": [
            {"id": profile_id, "chargingRateUnit": unit, "chargingSchedulePeriod": [period], **start}
        ],
        **bound,
    }
    if transaction_id is not None:
        profile["transactionId"] = transaction_id
    return profile


_PURPOSES_V2 = {
    "ChargePointMaxProfile": "ChargingStationMaxProfile",
    "TxDefaultProfile": "TxDefaultProfile",
    "TxProfile": "TxProfile",
}


class StationOperations:
    def __init__(self, server: OcppServer, timeout_s: float) -> None:
        self._server = server
        self.timeout_s = timeout_s

    def _connection(self, station_id: str) -> StationConnection:
        connection = self._server.connection(station_id)
        if connection is None:
            raise StationOffline(station_id)
        return connection

    def is_connected(self, station_id: str) -> bool:
        return self._server.connection(station_id) is not None

    def connected_stations(self) -> list[str]:
        return list(self._server.connections)

    def version(self, station_id: str) -> OcppVersion:
        return self._connection(station_id).version

    async def call(self, station_id: str, action: str, payload: Payload) -> Payload:
        """Any action of the station's version, schema-checked both ways."""
        return await self._connection(station_id).call(action, payload, self.timeout_s)

    async def reset(self, station_id: str, hard: bool) -> Payload:
        if self.version(station_id) is OcppVersion.V16:
            return await self.call(station_id, "Reset", {"type": "Hard" if hard else "Soft"})
        return await self.call(station_id, "Reset", {"type": "Immediate" if hard else "OnIdle"})

    async def remote_start(
        self, station_id: str, id_token: str, connector_id: int | None, request_id: int
    ) -> Payload:
        if self.version(station_id) is OcppVersion.V16:
            payload: Payload = {"idTag": id_token}
            if connector_id is not None:
                payload["connectorId"] = connector_id
            return await self.call(station_id, "RemoteStartTransaction", payload)
        payload = {"idToken": {"idToken": id_token, "type": "Central"}, "remoteStartId": request_id}
        if connector_id is not None:
            payload["evseId"] = connector_id
        return await self.call(station_id, "RequestStartTransaction", payload)

    async def remote_stop(self, station_id: str, transaction_id: str) -> Payload:
        if self.version(station_id) is OcppVersion.V16:
            return await self.call(
                station_id, "RemoteStopTransaction", {"transactionId": int(transaction_id)}
            )
        return await self.call(station_id, "RequestStopTransaction", {"transactionId": transaction_id})

    async def set_charging_limit(
        self,
        station_id: str,
        connector_id: int,
        limit: float,
        unit: str,
        purpose: str,
        profile_id: int | None = None,
        transaction_id: str | None = None,
        stack_level: int = 0,
        valid_to: datetime | None = None,
    ) -> tuple[Payload, Payload]:
        """SetChargingProfile; returns the profile sent and the station's answer. Without ``profile_id``
        the purpose's own id on that EVSE and stack level is used (``profile_id_for``), and the new limit
        replaces the last one there."""
        if profile_id is None:
            profile_id = profile_id_for(purpose, connector_id, stack_level)
        version = self.version(station_id)
        if version is OcppVersion.V16:
            profile = charging_profile(
                version, profile_id, purpose, limit, unit, transaction_id, stack_level, valid_to
            )
            answer = await self.call(
                station_id, "SetChargingProfile", {"connectorId": connector_id, "csChargingProfiles": profile}
            )
            return profile, answer
        profile = charging_profile(
            version, profile_id, _PURPOSES_V2[purpose], limit, unit, transaction_id, stack_level, valid_to
        )
        answer = await self.call(
            station_id, "SetChargingProfile", {"evseId": connector_id, "chargingProfile": profile}
        )
        return profile, answer

    async def composite_schedule(
        self, station_id: str, connector_id: int, duration_s: int, unit: str
    ) -> Payload:
        key = "connectorId" if self.version(station_id) is OcppVersion.V16 else "evseId"
        return await self.call(
            station_id,
            "GetCompositeSchedule",
            {key: connector_id, "duration": duration_s, "chargingRateUnit": unit},
        )

    async def trigger(self, station_id: str, message: str, connector_id: int | None) -> Payload:
        payload: Payload = {"requestedMessage": message}
        if connector_id is not None:
            if self.version(station_id) is OcppVersion.V16:
                payload["connectorId"] = connector_id
            else:
                payload["evse"] = {"id": connector_id}
        return await self.call(station_id, "TriggerMessage", payload)

    async def send_local_list(
        self, station_id: str, list_version: int, tokens: Sequence[IdTokenRecord], full: bool = True
    ) -> Payload:
        """AuCh local list: the CSM's tokens with their status and expiry, in the station's format."""
        update = "Full" if full else "Differential"
        if self.version(station_id) is OcppVersion.V16:
            entries = [{"idTag": t.id_token, "idTagInfo": id_tag_info(decide_for_list(t))} for t in tokens]
            payload: Payload = {
                "listVersion": list_version,
                "updateType": update,
                "localAuthorizationList": entries,
            }
        else:
            entries = [
                {
                    "idToken": {"idToken": t.id_token, "type": "Central"},
                    "idTokenInfo": id_token_info(decide_for_list(t)),
                }
                for t in tokens
            ]
            payload = {"versionNumber": list_version, "updateType": update, "localAuthorizationList": entries}
        return await self.call(station_id, "SendLocalList", payload)

    async def get_local_list_version(self, station_id: str) -> Payload:
        return await self.call(station_id, "GetLocalListVersion", {})

    async def reserve_now(
        self, station_id: str, reservation_id: int, connector_id: int, id_token: str, expiry: datetime
    ) -> Payload:
        if self.version(station_id) is OcppVersion.V16:
            payload: Payload = {
                "connectorId": connector_id,
                "expiryDate": format_time(expiry),
                "idTag": id_token,
                "reservationId": reservation_id,
            }
        else:
            payload = {
                "id": reservation_id,
                "expiryDateTime": format_time(expiry),
                "idToken": {"idToken": id_token, "type": "Central"},
                "evseId": connector_id,
            }
        return await self.call(station_id, "ReserveNow", payload)

    async def cancel_reservation(self, station_id: str, reservation_id: int) -> Payload:
        return await self.call(station_id, "CancelReservation", {"reservationId": reservation_id})

    async def unlock(self, station_id: str, connector_id: int) -> Payload:
        if self.version(station_id) is OcppVersion.V16:
            return await self.call(station_id, "UnlockConnector", {"connectorId": connector_id})
        return await self.call(station_id, "UnlockConnector", {"evseId": connector_id, "connectorId": 1})

    async def clear_charging_profile(self, station_id: str, profile_id: int) -> Payload:
        if self.version(station_id) is OcppVersion.V16:
            return await self.call(station_id, "ClearChargingProfile", {"id": profile_id})
        return await self.call(station_id, "ClearChargingProfile", {"chargingProfileId": profile_id})

"""Charging limits as OCPP charging profiles: the adapter behind the smart-charging service's port.

A limit is a one-period profile in A (``operations.charging_profile``) with its purpose's own id, so that
each new limit replaces the station's last one of that purpose instead of piling up. A station that
answers with a CALLERROR (a 1.6 station without Tx profiles says NotSupported) has not accepted it; the
service then tries the TxDefault profile. Every profile sent is recorded with the station's answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chargeflow.protocols.ocpp.connection import CallRejected
from chargeflow.protocols.ocpp.operations import StationOperations

Recorder = Callable[[str, int, dict[str, Any], str], Awaitable[None]]


class OcppStationControl:
    def __init__(self, operations: StationOperations, record: Recorder | None = None) -> None:
        self._operations = operations
        self._record = record

    def is_connected(self, station_id: str) -> bool:
        return self._operations.is_connected(station_id)

    async def set_limit(
        self, station_id: str, evse_id: int, current_a: float, purpose: str, transaction_id: str | None = None
    ) -> bool:
        try:
            profile, answer = await self._operations.set_charging_limit(
                station_id, evse_id, current_a, "A", purpose, transaction_id=transaction_id
            )
        except CallRejected as err:
            if self._record is not None:
                await self._record(
                    station_id, evse_id, {"purpose": purpose, "limit": current_a}, f"CallError: {err}"
                )
            return False
        status = str(answer.get("status", ""))
        if self._record is not None:
            await self._record(station_id, evse_id, profile, status)
        return status == "Accepted"

"""Charging limits as OCPP charging profiles: the adapter behind the smart-charging service's port.

A limit is a one-period profile in A (``operations.charging_profile``) with its purpose's own id, so that
each new limit replaces the station's last one of that purpose instead of piling up. A station that
answers with a CALLERROR (a 1.6 station without Tx profiles says NotSupported) has not accepted it; the
service then tries the TxDefault profile. Every profile sent is recorded with the station's answer.

The unit is the station's: each station is asked once which rate units it takes (1.6 configuration key
``ChargingScheduleAllowedChargingRateUnit``, 2.0.1 variable ``SmartChargingCtrlr.RateUnit``); one that
takes power only gets the limit in W. A station that does not say is sent A, the unit every
station must take by OCPP 1.6 and that 2.0.1 lists first. A station that refuses a limit in its unit is
sent it once more in the other (where the service gave the limit in W too), and where it takes that, it is
sent that unit from then on: some stations answer the unit question wrongly, or not at all, and take
only W.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chargeflow.protocols.ocpp.connection import CallRejected
from chargeflow.protocols.ocpp.frames import FrameError, OcppVersion
from chargeflow.protocols.ocpp.operations import StationOperations

log = logging.getLogger(__name__)

Recorder = Callable[[str, int, dict[str, Any], str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Terms:
    """What a limit is for: its purpose, its transaction, its stack level and how long it holds."""

    purpose: str
    transaction_id: str | None = None
    stack_level: int = 0
    valid_to: datetime | None = None


class OcppStationControl:
    def __init__(self, operations: StationOperations, record: Recorder | None = None) -> None:
        self._operations = operations
        self._record = record
        self._units: dict[str, str] = {}

    async def rate_unit(self, station_id: str) -> str:
        """``A`` or ``W``: what the station takes in a charging schedule (asked once, then remembered)."""
        unit = self._units.get(station_id)
        if unit is None:
            unit = _unit_from(await self._ask_rate_units(station_id))
            self._units[station_id] = unit
        return unit

    async def _ask_rate_units(self, station_id: str) -> str:
        ops = self._operations
        try:
            if ops.version(station_id) is OcppVersion.V16:
                answer = await ops.call(
                    station_id, "GetConfiguration", {"key": ["ChargingScheduleAllowedChargingRateUnit"]}
                )
                return str(answer["configurationKey"][0]["value"])
            answer = await ops.call(
                station_id,
                "GetVariables",
                {
                    "getVariableData": [
                        {"component": {"name": "SmartChargingCtrlr"}, "variable": {"name": "RateUnit"}}
                    ]
                },
            )
            return str(answer["getVariableResult"][0].get("attributeValue", ""))
        except (CallRejected, FrameError, KeyError, IndexError, TypeError):
            return ""

    def is_connected(self, station_id: str) -> bool:
        return self._operations.is_connected(station_id)

    def connected_stations(self) -> Collection[str]:
        return self._operations.connected_stations()

    async def set_limit(
        self,
        station_id: str,
        evse_id: int,
        current_a: float,
        purpose: str,
        transaction_id: str | None = None,
        power_w: float | None = None,
        stack_level: int = 0,
        valid_to: datetime | None = None,
    ) -> bool:
        unit = await self.rate_unit(station_id) if power_w is not None else "A"
        terms = Terms(purpose, transaction_id, stack_level, valid_to)
        if await self._send(station_id, evse_id, current_a, power_w, unit, terms):
            return True
        if power_w is None:
            return False
        other = "W" if unit == "A" else "A"
        if not await self._send(station_id, evse_id, current_a, power_w, other, terms):
            return False
        self._units[station_id] = other
        return True

    async def _send(
        self,
        station_id: str,
        evse_id: int,
        current_a: float,
        power_w: float | None,
        unit: str,
        terms: Terms,
    ) -> bool:
        limit = power_w if unit == "W" and power_w is not None else current_a
        try:
            profile, answer = await self._operations.set_charging_limit(
                station_id,
                evse_id,
                limit,
                unit,
                terms.purpose,
                transaction_id=terms.transaction_id,
                stack_level=terms.stack_level,
                valid_to=terms.valid_to,
            )
        except CallRejected as err:
            await self._recorded(
                station_id, evse_id, {"purpose": terms.purpose, "limit": current_a}, f"CallError: {err}"
            )
            return False
        status = str(answer.get("status", ""))
        await self._recorded(station_id, evse_id, profile, status)
        return status == "Accepted"

    async def _recorded(self, station_id: str, evse_id: int, profile: dict[str, Any], status: str) -> None:
        """Record the profile and the station's answer; a record that fails (the store is down) is logged
        and the answer still counts: the station holds the profile whether or not the store heard of it,
        and the safe limits sent while the store is down must reach every station."""
        if self._record is None:
            return
        try:
            await self._record(station_id, evse_id, profile, status)
        except Exception as err:
            log.warning(
                "OCPP: the %s profile of %s could not be recorded (%s: %s)",
                profile.get("chargingProfilePurpose", profile.get("purpose", "")),
                station_id,
                type(err).__name__,
                err,
            )


def _unit_from(allowed: str) -> str:
    """``W`` only where the station names power and not current; ``A`` otherwise."""
    parts = {p.strip().lower() for p in allowed.split(",") if p.strip()}
    takes_current = parts & {"current", "a"}
    takes_power = parts & {"power", "w"}
    return "W" if takes_power and not takes_current else "A"

"""Stations whose EVs draw what their profiles allow, on the ``ocpp`` library's charge points, for the
tests and the benchmark of ``chargeflow serve --site``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.client import connect

VOLTAGE_V = 230.0


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class Received:
    """A profile as the station got it: when (monotonic), its purpose, its limit in A, its transaction,
    its id."""

    at: float
    purpose: str
    limit_a: float
    transaction: str | None
    profile_id: int | None = None
    stack_level: int = 0
    valid_to: datetime | None = None  # after it, the profile no longer holds

    def holds(self, now: datetime) -> bool:
        return self.valid_to is None or now < self.valid_to


@dataclass(slots=True)
class Ev:
    """The car: it draws up to ``max_a`` per phase on three phases, whatever the station allows less."""

    max_a: float = 16.0
    phases: int = 3


@dataclass(slots=True)
class DrawingState:
    profiles: list[Received] = field(default_factory=list)
    transaction: str | None = None
    started_at: float | None = None
    register_wh: float = 0.0
    drawn_a: float = 0.0
    #: reject Tx profiles (a station that takes none): the CSM must fall back to TxDefault
    reject_tx_profiles: bool = False
    #: an EV (or a station) that ignores its limit: it draws what it can whatever it is sent
    ignore_limits: bool = False

    def allowed_a(self) -> float:
        """The limit in force: of the profiles still valid (``validTo``), the running transaction's
        TxProfile, else a TxDefault; of several, the highest stack level, then the newest; else the
        station's own maximum (none: 32 A)."""
        now = datetime.now(UTC)
        for purpose in ("TxProfile", "TxDefaultProfile"):
            valid = [
                p
                for p in self.profiles
                if p.purpose == purpose
                and p.holds(now)
                and (purpose != "TxProfile" or p.transaction == self.transaction)
            ]
            if valid:
                return max(valid, key=lambda p: (p.stack_level, p.at)).limit_a
        return 32.0

    def draw(self, ev: Ev, dt_s: float) -> float | None:
        """The EV draws what the limit in force allows for ``dt_s``: its power in W, None (nothing drawn)
        while no EV is plugged in."""
        if self.transaction is None:
            self.drawn_a = 0.0
            return None
        self.drawn_a = ev.max_a if self.ignore_limits else min(ev.max_a, self.allowed_a())
        power = self.drawn_a * ev.phases * VOLTAGE_V
        self.register_wh += power * dt_s / 3600
        return power

    def received(
        self,
        purpose: str,
        schedule: dict[str, Any],
        transaction: Any,
        profile_id: int | None = None,
        stack_level: int = 0,
        valid_to: str | None = None,
    ) -> None:
        periods = schedule["charging_schedule_period"]
        limit = float(periods[0]["limit"])
        if schedule["charging_rate_unit"] == "W":
            limit /= VOLTAGE_V * float(periods[0].get("number_phases") or 3)
        tx = None if transaction is None else str(transaction)
        until = None if valid_to is None else datetime.fromisoformat(valid_to.replace("Z", "+00:00"))
        self.profiles.append(Received(time.monotonic(), purpose, limit, tx, profile_id, stack_level, until))


class _Evses:
    """A station's EVSEs (1.6: connectors), numbered from 1, each with its own state; ``state`` is EVSE
    1's. A profile for EVSE 0 is for each of them."""

    evses: dict[int, DrawingState]

    @property
    def state(self) -> DrawingState:
        return self.evses[1]

    def _targets(self, evse_id: int) -> list[DrawingState]:
        return list(self.evses.values()) if evse_id == 0 else [self.evses[evse_id]]


class DrawingStation16(Cp16, _Evses):
    def __init__(self, station_id: str, connection: Any, evses: int = 1) -> None:
        super().__init__(station_id, connection, response_timeout=10)
        self.evses = {n: DrawingState() for n in range(1, evses + 1)}

    @on("SetChargingProfile")
    def on_set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        purpose = cs_charging_profiles["charging_profile_purpose"]
        if connector_id not in (0, *self.evses):
            return result16.SetChargingProfile(status="Rejected")
        targets = self._targets(connector_id)
        if purpose == "TxProfile" and any(t.reject_tx_profiles for t in targets):
            return result16.SetChargingProfile(status="Rejected")
        for t in targets:
            t.received(
                purpose,
                cs_charging_profiles["charging_schedule"],
                cs_charging_profiles.get("transaction_id"),
                cs_charging_profiles.get("charging_profile_id"),
                int(cs_charging_profiles.get("stack_level", 0)),
                cs_charging_profiles.get("valid_to"),
            )
        return result16.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear(self, **_: Any) -> Any:
        return result16.ClearChargingProfile(status="Accepted")

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None) -> Any:
        """The rate units it takes (the CSM asks once): current, as every 1.6 station must."""
        known = {"ChargingScheduleAllowedChargingRateUnit": "Current"}
        asked = key or list(known)
        return result16.GetConfiguration(
            configuration_key=[{"key": k, "readonly": True, "value": known[k]} for k in asked if k in known],
            unknown_key=[k for k in asked if k not in known] or None,
        )

    async def boot(self) -> None:
        await self.call(call16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        for n in self.evses:
            await self.call(
                call16.StatusNotification(connector_id=n, error_code="NoError", status="Available")
            )

    async def start_session(self, id_tag: str, evse: int = 1) -> None:
        answer = await self.call(
            call16.StartTransaction(connector_id=evse, id_tag=id_tag, meter_start=0, timestamp=now_iso())
        )
        self.evses[evse].transaction = str(answer.transaction_id)
        self.evses[evse].started_at = time.monotonic()

    async def report(self, ev: Ev, dt_s: float, evse: int = 1) -> None:
        s = self.evses[evse]
        power = s.draw(ev, dt_s)
        if power is None or s.transaction is None:
            return
        samples = [
            {"measurand": "Power.Active.Import", "unit": "W", "value": f"{power:.1f}"},
            {"measurand": "Energy.Active.Import.Register", "unit": "Wh", "value": f"{s.register_wh:.0f}"},
        ] + [
            {"measurand": "Current.Import", "unit": "A", "phase": f"L{i}", "value": f"{s.drawn_a:.2f}"}
            for i in range(1, ev.phases + 1)
        ]
        await self.call(
            call16.MeterValues(
                connector_id=evse,
                transaction_id=int(s.transaction),
                meter_value=[{"timestamp": now_iso(), "sampled_value": samples}],
            )
        )


class DrawingStation201(Cp201, _Evses):
    def __init__(self, station_id: str, connection: Any, evses: int = 1) -> None:
        super().__init__(station_id, connection, response_timeout=10)
        self.evses = {n: DrawingState() for n in range(1, evses + 1)}
        self._seq = 0

    @on("SetChargingProfile")
    def on_set_profile(self, evse_id: int, charging_profile: dict[str, Any]) -> Any:
        purpose = charging_profile["charging_profile_purpose"]
        if evse_id not in (0, *self.evses):
            return result201.SetChargingProfile(status="Rejected")
        targets = self._targets(evse_id)
        if purpose == "TxProfile" and any(t.reject_tx_profiles for t in targets):
            return result201.SetChargingProfile(status="Rejected")
        schedule = charging_profile["charging_schedule"][0]
        for t in targets:
            t.received(
                purpose,
                schedule,
                charging_profile.get("transaction_id"),
                charging_profile.get("id"),
                int(charging_profile.get("stack_level", 0)),
                charging_profile.get("valid_to"),
            )
        return result201.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear(self, **_: Any) -> Any:
        return result201.ClearChargingProfile(status="Accepted")

    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]]) -> Any:
        """SmartChargingCtrlr.RateUnit, the unit it takes (the CSM asks once): A; nothing else is known."""
        results = []
        for item in get_variable_data:
            known = (
                item["component"]["name"] == "SmartChargingCtrlr" and item["variable"]["name"] == "RateUnit"
            )
            results.append(
                {
                    "attribute_status": "Accepted" if known else "UnknownVariable",
                    "component": item["component"],
                    "variable": item["variable"],
                    **({"attribute_value": "A"} if known else {}),
                }
            )
        return result201.GetVariables(get_variable_result=results)

    async def boot(self) -> None:
        await self.call(
            call201.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
        )
        for n in self.evses:
            await self.call(
                call201.StatusNotification(
                    timestamp=now_iso(), connector_status="Available", evse_id=n, connector_id=1
                )
            )

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    async def start_session(self, id_tag: str, evse: int = 1) -> None:
        tx = f"{self.id}-tx{evse}"
        await self.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp=now_iso(),
                trigger_reason="Authorized",
                seq_no=self._next(),
                transaction_info={"transaction_id": tx, "charging_state": "Charging"},
                evse={"id": evse, "connector_id": 1},
                id_token={"id_token": id_tag, "type": "ISO14443"},
                meter_value=[
                    {
                        "timestamp": now_iso(),
                        "sampled_value": [{"value": 0, "measurand": "Energy.Active.Import.Register"}],
                    }
                ],
            )
        )
        self.evses[evse].transaction = tx
        self.evses[evse].started_at = time.monotonic()

    async def report(self, ev: Ev, dt_s: float, evse: int = 1) -> None:
        s = self.evses[evse]
        power = s.draw(ev, dt_s)
        if power is None or s.transaction is None:
            return
        samples: list[dict[str, Any]] = [
            {"value": round(power, 1), "measurand": "Power.Active.Import"},
            {"value": round(s.register_wh), "measurand": "Energy.Active.Import.Register"},
        ] + [
            {"value": round(s.drawn_a, 2), "measurand": "Current.Import", "phase": f"L{i}"}
            for i in range(1, ev.phases + 1)
        ]
        await self.call(
            call201.TransactionEvent(
                event_type="Updated",
                timestamp=now_iso(),
                trigger_reason="MeterValuePeriodic",
                seq_no=self._next(),
                transaction_info={"transaction_id": s.transaction, "charging_state": "Charging"},
                evse={"id": evse, "connector_id": 1},
                meter_value=[{"timestamp": now_iso(), "sampled_value": samples}],
            )
        )


DrawingStation = DrawingStation16 | DrawingStation201


@contextlib.asynccontextmanager
async def connected(
    port: int, station_id: str, version: str, evses: int = 1, password: str | None = None
) -> AsyncIterator[DrawingStation]:
    """A drawing station of ``version`` (``1.6`` or ``2.0.1``) with ``evses`` EVSEs connected and booted,
    its loop running; with ``password``, it gives it as OCPP security profile 1 does (HTTP Basic)."""
    subprotocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    headers = {}
    if password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{station_id}:{password}".encode()).decode()
    async with connect(
        f"ws://127.0.0.1:{port}/{station_id}",
        subprotocols=[subprotocol],  # type: ignore[list-item]
        open_timeout=10,
        additional_headers=headers,
    ) as ws:
        station: DrawingStation = (
            DrawingStation16(station_id, ws, evses)
            if version == "1.6"
            else DrawingStation201(station_id, ws, evses)
        )
        task = asyncio.create_task(station.start())
        try:
            await station.boot()
            yield station
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

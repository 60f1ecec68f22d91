"""Simulated stations for the tests, built on the ``ocpp`` library's charge-point side."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call_result as result201
from websockets.asyncio.client import ClientConnection, connect


class Station16(Cp16):
    """A 1.6 station that accepts remote starts and keeps the profiles it is sent."""

    def __init__(self, station_id: str, connection: ClientConnection) -> None:
        super().__init__(station_id, connection, response_timeout=5)
        self.profiles: list[dict[str, Any]] = []
        self.remote_starts: list[str] = []

    @on("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, **_: Any) -> Any:
        self.remote_starts.append(id_tag)
        return result16.RemoteStartTransaction(status="Accepted")

    @on("SetChargingProfile")
    def on_set_profile(self, connector_id: int, cs_charging_profiles: dict[str, Any]) -> Any:
        self.profiles.append(cs_charging_profiles)
        return result16.SetChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def on_composite(self, connector_id: int, duration: int, charging_rate_unit: str = "A") -> Any:
        if not self.profiles:
            return result16.GetCompositeSchedule(status="Rejected")
        schedule = self.profiles[-1]["charging_schedule"]
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start="2026-01-01T00:00:00Z",
            charging_schedule={
                "duration": duration,
                "chargingRateUnit": schedule["charging_rate_unit"],
                # The library parses 1.6 profile limits as Decimal but cannot re-encode them when it
                # validates this answer, so the simulated station hands back floats.
                "chargingSchedulePeriod": [
                    {"startPeriod": p["start_period"], "limit": float(p["limit"])}
                    for p in schedule["charging_schedule_period"]
                ],
            },
        )

    @on("Reset")
    def on_reset(self, type: str) -> Any:
        return result16.Reset(status="Accepted")


class Station201(Cp201):
    def __init__(self, station_id: str, connection: ClientConnection) -> None:
        super().__init__(station_id, connection, response_timeout=5)
        self.profiles: list[dict[str, Any]] = []

    @on("RequestStartTransaction")
    def on_request_start(self, id_token: dict[str, Any], remote_start_id: int, **_: Any) -> Any:
        return result201.RequestStartTransaction(status="Accepted")

    @on("SetChargingProfile")
    def on_set_profile(self, evse_id: int, charging_profile: dict[str, Any]) -> Any:
        self.profiles.append(charging_profile)
        return result201.SetChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def on_composite(self, duration: int, evse_id: int, charging_rate_unit: str = "A") -> Any:
        if not self.profiles:
            return result201.GetCompositeSchedule(status="Rejected")
        schedule = self.profiles[-1]["charging_schedule"][0]
        return result201.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evseId": evse_id,
                "duration": duration,
                "scheduleStart": "2026-01-01T00:00:00Z",
                "chargingRateUnit": schedule["charging_rate_unit"],
                "chargingSchedulePeriod": [
                    {"startPeriod": p["start_period"], "limit": p["limit"]}
                    for p in schedule["charging_schedule_period"]
                ],
            },
        )


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def basic_auth(station_id: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@asynccontextmanager
async def running(station: Cp16 | Cp201) -> AsyncIterator[None]:
    """Run the library's receive loop for the station while the block runs."""
    task = asyncio.create_task(station.start())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def open_ws(
    port: int, station_id: str, subprotocol: str, password: str | None = None
) -> AsyncIterator[ClientConnection]:
    headers = basic_auth(station_id, password) if password is not None else None
    async with connect(
        f"ws://127.0.0.1:{port}/{station_id}",
        subprotocols=[subprotocol],  # type: ignore[list-item]
        additional_headers=headers,
        open_timeout=5,
    ) as ws:
        yield ws

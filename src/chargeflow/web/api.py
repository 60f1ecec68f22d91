"""The management REST API under ``/api`` (FastAPI; OpenAPI at ``/openapi.json``).

Every request carries the admin token as ``Authorization: Bearer <token>``. Operations on a station
return the station's own answer, or 504 after a bounded wait, 409 when it is not connected and 502
when it answered with a CALLERROR.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chargeflow.billing.service import BillingService
from chargeflow.csm.model import IdTokenRecord
from chargeflow.csm.service import CsmService
from chargeflow.protocols.ocpp.operations import StationOperations
from chargeflow.web.billing_api import billing_router
from chargeflow.web.calls import offline, station_call
from chargeflow.web.headers import SecurityHeaders
from chargeflow.web.limits import HttpBudgets, install_limits
from chargeflow.web.refusals import refuse_unstorable, validation_refused
from chargeflow.web.schemas import (
    ChargingLimitIn,
    ConnectorOut,
    MeterValueOut,
    RemoteStartIn,
    RemoteStopIn,
    ReservationAnswer,
    ReservationIn,
    ResetIn,
    SessionDetail,
    SessionOut,
    StationAnswer,
    StationDetail,
    StationIn,
    StationOut,
    TokenIn,
    TriggerIn,
)
from chargeflow.web.ui import UiSettings, mount_ui


def _bearer_check(admin_token: str) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    def check(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))],
    ) -> None:
        if credentials is None or not hmac.compare_digest(
            credentials.credentials.encode(), admin_token.encode()
        ):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "admin token required", headers={"WWW-Authenticate": "Bearer"}
            )

    return check


def create_api(
    service: CsmService,
    operations: StationOperations,
    admin_token: str,
    new_request_id: Callable[[], int],
    ui: UiSettings | None = None,
    billing: BillingService | None = None,
    budgets: HttpBudgets | None = None,
) -> FastAPI:
    """The REST API; with ``billing`` also tariffs, CDRs and reports (``web.billing_api``); with ``ui``
    also the owner's dashboard and the driver pages (``web.ui``)."""
    app = FastAPI(title="Chargeflow CSM", version="0.1.0", dependencies=[Depends(refuse_unstorable)])
    app.add_exception_handler(RequestValidationError, validation_refused)
    install_limits(app, budgets or HttpBudgets())
    app.add_middleware(SecurityHeaders)
    api = APIRouter(prefix="/api", dependencies=[Depends(_bearer_check(admin_token))])
    repository = service.repository

    @api.get("/stations")
    async def list_stations() -> list[StationOut]:
        return [
            StationOut.of(s, operations.is_connected(s.station_id)) for s in await repository.list_stations()
        ]

    @api.get("/stations/{station_id}")
    async def get_station(station_id: str) -> StationDetail:
        station = await repository.get_station(station_id)
        if station is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no station {station_id}")
        connectors = [
            ConnectorOut(
                evse_id=c.evse_id,
                connector_id=c.connector_id,
                status=c.status,
                error_code=c.error_code,
                updated_at=c.timestamp,
            )
            for c in await repository.connector_statuses(station_id)
        ]
        out = StationOut.of(station, operations.is_connected(station_id))
        return StationDetail(**out.model_dump(), connectors=connectors)

    @api.post("/stations", status_code=status.HTTP_201_CREATED)
    async def register_station(body: StationIn) -> StationOut:
        station = await service.register_station(body.id, body.password)
        return StationOut.of(station, operations.is_connected(body.id))

    @api.post("/tokens", status_code=status.HTTP_201_CREATED)
    async def put_token(body: TokenIn) -> TokenIn:
        await service.put_token(IdTokenRecord(body.id_token, body.status, body.expiry))
        return body

    @api.get("/sessions")
    async def list_sessions(station: str | None = None, active: bool | None = None) -> list[SessionOut]:
        return [SessionOut.of(tx) for tx in await service.sessions(station, active)]

    @api.get("/sessions/{session_id}")
    async def get_session(session_id: int) -> SessionDetail:
        tx = await repository.get_transaction(session_id)
        if tx is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no session {session_id}")
        samples = [MeterValueOut.of(s) for s in await repository.meter_values(session_id)]
        return SessionDetail(**SessionOut.of(tx).model_dump(), meter_values=samples)

    @api.post("/stations/{station_id}/reset")
    async def reset(station_id: str, body: ResetIn) -> StationAnswer:
        return await station_call(station_id, "Reset", operations.reset(station_id, body.type == "hard"))

    @api.post("/stations/{station_id}/remote-start")
    async def remote_start(station_id: str, body: RemoteStartIn) -> StationAnswer:
        call = operations.remote_start(station_id, body.id_token, body.connector_id, new_request_id())
        return await station_call(station_id, "RemoteStart", call)

    @api.post("/stations/{station_id}/remote-stop")
    async def remote_stop(station_id: str, body: RemoteStopIn) -> StationAnswer:
        return await station_call(
            station_id, "RemoteStop", operations.remote_stop(station_id, body.transaction_id)
        )

    @api.post("/stations/{station_id}/charging-limit")
    async def charging_limit(station_id: str, body: ChargingLimitIn) -> StationAnswer:
        async def send() -> dict[str, Any]:
            profile, answer = await operations.set_charging_limit(
                station_id,
                body.connector_id,
                body.limit,
                body.unit,
                body.purpose,
                None,  # the purpose's own id: a new limit replaces the last (2.0.1 K01.FR.06)
                body.transaction_id,
            )
            await service.record_charging_profile(
                station_id, body.connector_id, profile, str(answer.get("status", "?"))
            )
            return answer

        return await station_call(station_id, "SetChargingProfile", send())

    @api.get("/stations/{station_id}/composite-schedule")
    async def composite_schedule(
        station_id: str, connector_id: int = 0, duration: int = 3600, unit: str = "A"
    ) -> StationAnswer:
        call = operations.composite_schedule(station_id, connector_id, duration, unit)
        return await station_call(station_id, "GetCompositeSchedule", call)

    @api.post("/stations/{station_id}/trigger")
    async def trigger(station_id: str, body: TriggerIn) -> StationAnswer:
        call = operations.trigger(station_id, body.message, body.connector_id)
        return await station_call(station_id, "TriggerMessage", call)

    @api.post("/stations/{station_id}/reservations")
    async def reserve(station_id: str, body: ReservationIn) -> ReservationAnswer:
        if not operations.is_connected(station_id):  # no reservation is stored for a station we cannot reach
            raise offline(station_id)
        reservation = await service.reserve(station_id, body.connector_id, body.id_token, body.expiry)
        call = operations.reserve_now(
            station_id, reservation.id, body.connector_id, body.id_token, body.expiry
        )
        answer = await station_call(station_id, "ReserveNow", call)
        updated = await service.reservation_answered(
            station_id, reservation.id, str(answer.answer.get("status"))
        )
        return ReservationAnswer(
            **answer.model_dump(),
            reservation_id=reservation.id,
            status=str(updated.status if updated else ""),
        )

    @api.delete("/stations/{station_id}/reservations/{reservation_id}")
    async def cancel_reservation(station_id: str, reservation_id: int) -> ReservationAnswer:
        if await repository.get_reservation(reservation_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no reservation {reservation_id}")
        call = operations.cancel_reservation(station_id, reservation_id)
        answer = await station_call(station_id, "CancelReservation", call)
        updated = await service.reservation_cancelled(
            station_id, reservation_id, str(answer.answer.get("status"))
        )
        return ReservationAnswer(
            **answer.model_dump(),
            reservation_id=reservation_id,
            status=str(updated.status if updated else ""),
        )

    if billing is not None:
        api.include_router(billing_router(billing))
    app.include_router(api)
    if ui is not None:
        mount_ui(app, service, operations, ui, new_request_id, admin_token)
    return app

"""A call to a station as the API and the dashboard make it: the station's answer, or an HTTP error."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastapi import HTTPException, status

from chargeflow.protocols.ocpp.connection import CallRejected, CallTimeout
from chargeflow.protocols.ocpp.frames import FrameError
from chargeflow.protocols.ocpp.operations import MissingTransaction, StationOffline
from chargeflow.web.schemas import StationAnswer


async def station_call(station_id: str, action: str, call: Awaitable[dict[str, Any]]) -> StationAnswer:
    try:
        answer = await call
    except StationOffline:
        raise offline(station_id) from None
    except CallTimeout as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, str(exc)) from None
    except FrameError as exc:  # our request breaks the station's schema (e.g. an unknown trigger)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.description) from None
    except MissingTransaction as exc:  # a request the station would have to reject
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except CallRejected as exc:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            {"code": exc.error.code, "description": exc.error.description, "details": exc.error.details},
        ) from None
    return StationAnswer(station_id=station_id, action=action, answer=answer)


def offline(station_id: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, f"station {station_id} is not connected")

"""The 422 for a request whose values break their bounds: says which field and why, never echoes the value.

FastAPI's own answer repeats each refused input; a refused NaN or infinity (which Python's JSON reader takes)
then cannot be written as JSON and the refusal became a 500 (#13). The value is the client's; the field
and the rule are all it needs back.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from chargeflow.site import bounds

log = logging.getLogger(__name__)


async def validation_refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": ""}
    log.warning("refused %s %s: %s %s", request.method, request.url.path, first["loc"], first["msg"])
    return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


# Path and query parameters the routes read as integer ids, stored in INTEGER columns.
_ID_PARAMS = frozenset({"session_id", "connector_id", "evse_id", "reservation_id"})


def refuse_unstorable(request: Request) -> None:
    """Refuse path and query values the database cannot hold before a route looks them up: a NUL (which
    PostgreSQL's text refuses), an id beyond INTEGER (2^63 on SQLite, 2^31 on PostgreSQL). Each was a 500;
    a path is then a 404 (nothing can be stored there), a query a 422."""
    for params, refusal in (
        (request.path_params, status.HTTP_404_NOT_FOUND),
        (request.query_params, status.HTTP_422_UNPROCESSABLE_CONTENT),
    ):
        for key, value in params.items():
            if not isinstance(value, str):
                continue
            if bounds.has_nul(value):
                raise HTTPException(refusal, f"{key} must not contain a NUL character")
            digits = value.removeprefix("-")
            if (
                key in _ID_PARAMS
                and digits.isdigit()
                and (len(digits) > 10 or not 0 <= int(value) <= bounds.MAX_ID)
            ):
                raise HTTPException(refusal, f"{key} is outside [0, {bounds.MAX_ID}]")

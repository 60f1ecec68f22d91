"""The 422 for a request whose values break their bounds: says which field and why, never echoes the value.

FastAPI's own answer repeats each refused input; a refused NaN or infinity (which Python's JSON reader takes)
then cannot be written as JSON and the refusal became a 500 (#13). The value is the client's; the field
and the rule are all it needs back.
"""

from __future__ import annotations

import logging

from fastapi import Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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

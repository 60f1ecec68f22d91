"""What one HTTP request may cost: a body budget checked before anything parses it.

Found (issue 13, item 6): a 10 MiB body to the driver's preferences endpoint froze HTTP and OCPP for 11.6 s
before any authentication, and its 422 echoed the whole body; 100 MiB gave no answer in 2 minutes at 2.5 GB;
a 100 MB body to ``/api/stations`` without a token cost 600 MB before the 401 (FastAPI reads and parses the
body before it runs the route's dependencies, authentication among them).

``BodyLimit`` is a pure ASGI middleware, outside FastAPI's routing: a request whose ``Content-Length`` is over
the budget is answered 413 before a byte of its body is read; a body without a length (chunked) is counted as
it streams and answered 413 as soon as it passes the budget. The 413 closes the connection, so the rest of
the body is never read. A validation error (422) never echoes the body (``web.refusals``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HttpBudgets:
    # 256 KiB: the largest body the API takes is the site's tariffs (``PUT /api/tariffs``), a few KiB
    # for a real site; forms and preferences are well under 1 KiB.
    max_body_bytes: int = 256 * 1024

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ValueError("the HTTP body budget must allow at least 1 KiB")


class BodyTooLarge(Exception):
    """Raised into the application when a streamed body passes the budget (its 413 is already sent)."""


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """413 for a body over ``max_body_bytes``, by its declared length or as it streams."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.refused = 0  # requests answered 413

    async def _refuse(self, scope: Scope, send: Send) -> None:
        self.refused += 1
        if self.refused == 1 or self.refused % 1000 == 0:
            log.warning(
                "%s %s: body over %d bytes refused (413; %d so far)",
                scope.get("method"),
                scope.get("path"),
                self.max_body_bytes,
                self.refused,
            )
        body = f"request body over {self.max_body_bytes} bytes\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),  # the rest of the body is not read
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._refuse(scope, send)
            return
        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    if not started and not refused:
                        refused = True
                        await self._refuse(scope, send)
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:  # the 413 went out; whatever the application answers after it is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not refused:
                raise


def install_limits(app: FastAPI, budgets: HttpBudgets) -> None:
    """The body budget on ``app`` (a 422 never echoes the body: ``web.refusals``)."""
    app.add_middleware(BodyLimit, max_body_bytes=budgets.max_body_bytes)

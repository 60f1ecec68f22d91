"""The event loop the long-running commands use: uvloop where it is installed, else asyncio's own.

uvloop runs the same asyncio code with its loop in C (libuv): each wake-up of a task, each timer and each
hand-over from a database thread costs less, which is most of what a message costs the OCPP server
beyond its parsing and its SQL. ``CHARGEFLOW_EVENT_LOOP=asyncio`` picks asyncio's loop anyway.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    if os.environ.get("CHARGEFLOW_EVENT_LOOP", "").lower() == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)

"""What the end-to-end tests wait on: a condition polled until a deadline, and the local MQTT broker."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable


async def until(predicate: Callable[[], bool], timeout_s: float, what: str = "timed out") -> None:
    """Poll ``predicate`` every 0.1 s until it holds; fail saying ``what`` after ``timeout_s``. (The
    stations' state changes in the ``ocpp`` library's receive loop, which sets no event to wait on.)"""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def mqtt_broker_up(host: str = "127.0.0.1", port: int = 1883) -> bool:
    """The local Mosquitto answers (``.ci/run`` starts it; tests that need it skip without it)."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0

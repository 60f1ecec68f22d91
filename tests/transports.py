"""A websocket stand-in for tests that call a connection's ``answer`` directly."""

from __future__ import annotations


class NullTransport:
    async def send(self, message: str) -> None:
        return None

    async def recv(self) -> str:
        raise EOFError

    async def close(self, code: int = 1000, reason: str = "") -> None:
        return None

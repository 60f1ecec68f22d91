"""A meter that streams on its own (a DSMR P1 port, an SML IR head): over a serial line or TCP (ser2net,
a P1 or IR dongle), read until cancelled, reconnected with a backoff when the link is lost or silent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import serialx

from chargeflow.clock import Clock
from chargeflow.devices.base import Readings
from chargeflow.devices.reading import Reading
from chargeflow.site.config import MeterConfig

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0


class StreamMeter(Readings):
    """The link; a subclass turns the bytes into readings (``feed``) and forgets a partial message when
    the link starts again (``restart``)."""

    default_baudrate = 9600  # when the site file names none

    def __init__(
        self,
        config: MeterConfig,
        clock: Clock,
        on_reading: Callable[[], None] | None = None,
        retry_s: float = 1.0,
        max_retry_s: float = 30.0,
    ) -> None:
        super().__init__(config, clock, on_reading)
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self.connected = asyncio.Event()
        self.connections = 0

    @property
    def source(self) -> str:
        if self.config.serial_port is not None:
            return self.config.serial_port
        return f"{self.config.host}:{self.config.port}"

    def feed(self, data: bytes) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        raise NotImplementedError

    def publish(self, power_w: float, current_a: tuple[float, float, float] | None) -> None:
        """A good message: its reading, the error cleared."""
        self.latest = Reading(self._clock.now(), power_w * self.config.sign, None, current_a)
        self.error = None
        if self._on_reading is not None:
            self._on_reading()

    async def _open(self) -> tuple[asyncio.StreamReader, Callable[[], None]]:
        """The link's reader and how to close it."""
        if self.config.serial_port is not None:
            baudrate = self.config.baudrate or self.default_baudrate
            reader, serial = await serialx.open_serial_connection(self.config.serial_port, baudrate=baudrate)
            return reader, serial.close
        if self.config.host is None or self.config.port is None:
            raise OSError("a meter over TCP needs its host and port")
        reader, writer = await asyncio.open_connection(self.config.host, self.config.port)
        return reader, writer.close

    async def run(self) -> None:
        """Read until cancelled. A lost link, or one silent for ``stale_after_s`` (half-open TCP, an IR
        head that fell off), is opened again after a backoff that doubles up to ``max_retry_s``; the last
        reading is kept meanwhile, and goes stale."""
        backoff = self._retry_s
        while True:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    reader, close = await self._open()
            except (OSError, TimeoutError, serialx.SerialException) as err:
                self.failed(f"{self.source}: cannot connect ({type(err).__name__}: {err})")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_retry_s)
                continue
            self.connections += 1
            self.connected.set()
            self.restart()
            try:
                while True:
                    try:
                        data = await asyncio.wait_for(reader.read(4096), self.config.stale_after_s)
                    except TimeoutError:
                        self.failed(f"{self.source}: silent for {self.config.stale_after_s:g} s")
                        break
                    if not data:
                        self.failed(f"{self.source}: the link closed")
                        break
                    before = self.latest
                    self.feed(data)
                    if self.latest is not before:
                        backoff = self._retry_s
            except (OSError, serialx.SerialException) as err:
                self.failed(f"{self.source}: {type(err).__name__}: {err}")
            finally:
                self.connected.clear()
                close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_retry_s)

"""A meter whose readings come as JSON messages on an MQTT topic (Tasmota, Shelly, a generic bridge)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiomqtt

from chargeflow.clock import Clock
from chargeflow.devices.base import Readings
from chargeflow.site.config import MeterConfig, MqttBrokerConfig


class MqttMeter(Readings):
    def __init__(
        self,
        config: MeterConfig,
        broker: MqttBrokerConfig,
        clock: Clock,
        on_reading: Callable[[], None] | None = None,
        retry_s: float = 2.0,
    ) -> None:
        super().__init__(config, clock, on_reading)
        self._broker = broker
        self._retry_s = retry_s
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        """Subscribe and read until cancelled; a lost broker is retried, the reading going stale meanwhile."""
        assert self.config.topic is not None
        while True:
            try:
                async with aiomqtt.Client(self._broker.host, self._broker.port, timeout=10) as client:
                    await client.subscribe(self.config.topic, qos=0)
                    self.subscribed.set()
                    async for message in client.messages:
                        payload = message.payload
                        self.take(payload if isinstance(payload, bytes | str) else b"")
            except aiomqtt.MqttError as err:
                self.subscribed.clear()
                self.failed(f"broker {self._broker.host}:{self._broker.port}: {err}")
                await asyncio.sleep(self._retry_s)

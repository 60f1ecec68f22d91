"""A meter polled over HTTP for a JSON document (a Shelly's /rpc, a Tasmota's /cm?cmnd=Status, a bridge)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from chargeflow.clock import Clock
from chargeflow.devices.base import Readings
from chargeflow.site.config import MeterConfig


class HttpMeter(Readings):
    def __init__(
        self, config: MeterConfig, clock: Clock, on_reading: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config, clock, on_reading)

    async def run(self) -> None:
        assert self.config.url is not None
        timeout = min(self.config.interval_s, 10.0)
        async with httpx.AsyncClient(timeout=timeout) as client:
            while True:
                try:
                    answer = await client.get(self.config.url)
                    if answer.status_code != 200:
                        self.failed(f"{self.config.url} answered {answer.status_code}")
                    else:
                        self.take(answer.content)
                except httpx.HTTPError as err:
                    self.failed(f"{self.config.url}: {type(err).__name__} {err}")
                await asyncio.sleep(self.config.interval_s)

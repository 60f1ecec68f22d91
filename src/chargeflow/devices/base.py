"""The interface every device adapter offers the site meter: its settings, its latest reading, its last
error, and a task that keeps them up to date until it is cancelled."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from chargeflow.clock import Clock
from chargeflow.devices.reading import Reading, json_path, number, read_currents, read_power
from chargeflow.site.config import MeterConfig

log = logging.getLogger(__name__)


class Device(Protocol):
    config: MeterConfig
    latest: Reading | None
    error: str | None

    async def run(self) -> None: ...


class Readings:
    """What an adapter keeps: each message turned into a reading, or the error that kept the last one."""

    def __init__(self, config: MeterConfig, clock: Clock, on_reading: Callable[[], None] | None) -> None:
        self.config = config
        self.latest: Reading | None = None
        self.error: str | None = None
        self._clock = clock
        self._on_reading = on_reading

    def take(self, payload: bytes | str) -> None:
        """A message: its reading, or (malformed) an error logged once, the previous reading kept so that
        it goes stale."""
        try:
            document: Any = json.loads(payload)
            assert self.config.power is not None  # checked with the site file for the JSON adapters
            power = read_power(document, self.config.power, self.config.unit, self.config.sign)
            soc = number(json_path(document, self.config.soc), self.config.soc) if self.config.soc else None
            currents = read_currents(document, self.config.currents) if self.config.currents else None
        except (ValueError, KeyError, TypeError) as err:
            self.failed(f"unreadable message: {err}")
            return
        self.latest = Reading(self._clock.now(), power, soc, currents)
        self.error = None
        if self._on_reading is not None:
            self._on_reading()

    def failed(self, error: str) -> None:
        if error != self.error:
            log.warning("meter %s: %s", self.config.id, error)
        self.error = error

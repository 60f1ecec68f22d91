"""A SunSpec device over Modbus TCP: a meter (201–204), a PV inverter (101–103, 111–113, 701) or a battery
(124, 802), found by the model chain at 40000 (then 0, then 50000) and polled every ``interval_s``.

The registers are read here and laid out by ``devices.sunspec_models`` (pure). Any failure (no answer within
the timeout, a Modbus exception, a frame that does not parse, a map that is not SunSpec) keeps the last
reading, so that it goes stale, sets ``error`` (logged once) and drops the connection: the next poll
connects again and runs the discovery anew, so a device that restarted with another map is read right.

A battery with a writable 124 basic storage model takes the EMS's setpoint (``set_discharge``, the
``ems.service.EssControl`` port); see ``sunspec_models.discharge_write`` for what is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from chargeflow.clock import Clock
from chargeflow.devices.base import Readings
from chargeflow.devices.reading import Reading
from chargeflow.devices.sunspec_models import (
    BASE_ADDRESSES,
    MAX_MODELS,
    DeviceValues,
    ModelBlock,
    SunSpecError,
    chain_step,
    decode,
    device_values,
    discharge_write,
    is_marker,
    needed_models,
    read_spans,
)
from chargeflow.site.config import MeterConfig

log = logging.getLogger(__name__)

DEFAULT_PORT = 502


class ModbusAnswerError(OSError):
    """The device answered with a Modbus exception, or with fewer registers than asked for."""


def _exception(answer: ModbusPDU) -> str:
    """A Modbus exception answer in words: ``exception 2 (ILLEGAL_ADDRESS)``."""
    code = getattr(answer, "exception_code", None)
    if not isinstance(code, int):
        return str(answer)
    try:
        return f"exception {code} ({ExcCodes(code).name})"
    except ValueError:
        return f"exception {code}"


class SunSpecDevice(Readings):
    def __init__(
        self,
        config: MeterConfig,
        clock: Clock,
        on_reading: Callable[[], None] | None = None,
        *,
        timeout_s: float | None = None,
        revert_s: int = 60,
    ) -> None:
        super().__init__(config, clock, on_reading)
        assert config.host is not None  # checked with the site file
        self._host = config.host
        self._port = config.port or DEFAULT_PORT
        # every request has a timeout: at most one poll interval, between 0.5 and 5 s
        self._timeout_s = timeout_s if timeout_s is not None else max(0.5, min(config.interval_s, 5.0))
        self._revert_s = revert_s
        self._client: AsyncModbusTcpClient | None = None
        self._blocks: list[ModelBlock] = []
        self._points: dict[int, dict[str, float | int | None]] = {}
        self._lock = asyncio.Lock()  # one request at a time on the connection (polls and setpoints)
        self.values: DeviceValues | None = None  # the last values read, with a battery's limits
        self.models: list[int] = []  # the model ids of the device's map, as discovered

    @property
    def writable(self) -> bool:
        """A battery that takes a power setpoint (a 124 basic storage model)."""
        return any(b.model_id == 124 for b in self._blocks)

    async def run(self) -> None:
        # pymodbus logs every timeout and failed connection itself (ERROR and WARNING, each poll); the
        # device's ``error`` reports each failure once, so those lines would only repeat it at every poll
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        try:
            while True:
                try:
                    async with self._lock:
                        await self._poll()
                except (ModbusException, OSError, SunSpecError, TimeoutError) as err:
                    self.failed(f"{self._host}:{self._port}: {type(err).__name__} {err}")
                    self._disconnect()
                await asyncio.sleep(self.config.interval_s)
        finally:
            self._disconnect()

    async def set_discharge(self, discharge_w: float) -> None:
        """Hold the battery at ``discharge_w`` (negative: charge; 124's rates say which way, whatever the
        site file's ``sign`` for its readings); SunSpecError if the device has no writable storage model,
        OSError if it refuses or does not answer."""
        async with self._lock:
            block = next((b for b in self._blocks if b.model_id == 124), None)
            points = self._points.get(124)
            if block is None or points is None:
                raise SunSpecError(f"meter {self.config.id}: no 124 basic storage model read to set")
            write = discharge_write(block, points, discharge_w, self._revert_s)
            unit = self.config.unit_id
            try:
                client = await self._connected()
                await self._check(
                    client.write_registers(write.rates_address, list(write.rates), device_id=unit)
                )
                if write.revert_address is not None:
                    await self._check(
                        client.write_register(write.revert_address, write.revert_s, device_id=unit)
                    )
                await self._check(client.write_register(write.mode_address, write.mode, device_id=unit))
            except ModbusException as err:  # pymodbus's (a timeout, a lost connection): an OSError here
                raise ModbusAnswerError(f"the battery's setpoint: {type(err).__name__} {err}") from err
            log.debug("meter %s: battery set to discharge %.0f W", self.config.id, discharge_w)

    # --- Modbus ---

    async def _poll(self) -> None:
        client = await self._connected()
        if not self._blocks:
            await self._discover(client)
        points = {}
        for block in self._blocks:
            registers: list[int] = []
            for address, count in read_spans(block):
                registers.extend(await self._read(client, address, count))
            points[block.model_id] = decode(block.model_id, registers)
        self._points = points
        values = device_values(self.config.role, points)
        if values.power_w is None:
            raise SunSpecError(f"models {sorted(points)} give no power (not implemented)")
        self.values = values
        self.latest = Reading(
            self._clock.now(), values.power_w * self.config.sign, values.soc_pct, values.current_a
        )
        self.error = None
        if self._on_reading is not None:
            self._on_reading()

    async def _discover(self, client: AsyncModbusTcpClient) -> None:
        answers = []
        for base in BASE_ADDRESSES:
            try:
                marker = await self._read(client, base, 2)
            except ModbusAnswerError as err:  # no registers there: try the next base
                answers.append(str(err))
                continue
            if is_marker(marker):
                break
            answers.append(f"no SunS at {base}")
        else:
            raise SunSpecError(f"no SunSpec map: {'; '.join(answers)}")
        found: list[ModelBlock] = []
        address = base + 2
        for _ in range(MAX_MODELS):
            block, address = chain_step(address, await self._read(client, address, 2))
            if block is None:
                break
            found.append(block)
        else:
            raise SunSpecError(f"no end of the model chain after {MAX_MODELS} models")
        needed = needed_models(self.config.role, found)
        self.models = [b.model_id for b in found]
        if not needed:
            raise SunSpecError(f"no model for a {self.config.role} meter among {self.models}")
        self._blocks = needed
        log.info(
            "meter %s: SunSpec map at %d with models %s; reading %s",
            self.config.id,
            base,
            self.models,
            [b.model_id for b in needed],
        )

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._disconnect()
        # reconnect_delay 0: no reconnecting behind our back; the poll loop reconnects, and discovers anew
        client = AsyncModbusTcpClient(
            self._host, port=self._port, timeout=self._timeout_s, retries=0, reconnect_delay=0
        )
        self._client = client
        if not await asyncio.wait_for(client.connect(), self._timeout_s + 1.0):
            raise ConnectionError(f"cannot connect to {self._host}:{self._port}")
        return client

    async def _read(self, client: AsyncModbusTcpClient, address: int, count: int) -> list[int]:
        answer = await asyncio.wait_for(
            client.read_holding_registers(address, count=count, device_id=self.config.unit_id),
            self._timeout_s + 1.0,
        )
        if answer.isError():
            raise ModbusAnswerError(f"reading {count} registers at {address}: {_exception(answer)}")
        registers: Sequence[int] = answer.registers
        if len(registers) != count:
            raise ModbusAnswerError(f"asked for {count} registers at {address}, got {len(registers)}")
        return list(registers)

    async def _check(self, request: Awaitable[ModbusPDU]) -> None:
        answer = await asyncio.wait_for(request, self._timeout_s + 1.0)
        if answer.isError():
            raise ModbusAnswerError(f"the battery refused the write: {_exception(answer)}")

    def _disconnect(self) -> None:
        self._blocks = []
        if self._client is not None:
            self._client.close()
            self._client = None

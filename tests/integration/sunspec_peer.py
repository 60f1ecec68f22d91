"""A SunSpec device for the tests: pymodbus's own TCP server on 127.0.0.1, serving a register map built with
pysunspec2 from its SunSpec model definitions (the values under test are set as SunSpec points, never as
register numbers). It can answer with Modbus exceptions, go silent, garble its frames, go away and come back.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Literal

import sunspec2.device as sunspec_device
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

Behaviour = Literal["ok", "exception", "silent", "garbled"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def model(model_id: int, **points: float | str) -> Any:
    """A pysunspec2 model with its points set: ``name=value`` sets the raw value (scale factors, strings),
    ``name_c=value`` the computed value (scaled by the point's scale factor, set before it)."""
    m = sunspec_device.Model(model_id=model_id)
    for name, value in points.items():
        if name.endswith("_c"):
            m.points[name[:-2]].cvalue = value
        else:
            m.points[name].value = value
    return m


def _registers(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


class SunSpecPeer:
    def __init__(self, models: list[Any], *, base: int = 40000, unit_id: int = 1) -> None:
        self.base = base
        self.unit_id = unit_id
        self.models = {m.model_id: m for m in models}
        self.addresses: dict[int, int] = {}
        image = [0x5375, 0x6E53]  # "SunS"
        for m in models:
            self.addresses[m.model_id] = base + len(image)
            image.extend(_registers(m.get_mb()))
        image.extend([0xFFFF, 0])
        self.registers = image  # the device's registers from ``base`` on, as it serves them
        self._behaviour: Behaviour = "ok"
        self._answering = asyncio.Event()  # cleared while it is silent
        self._answering.set()
        self.requests = 0
        self.port = free_port()
        self._server: ModbusTcpServer | None = None

    async def start(self) -> None:
        device = SimDevice(
            self.unit_id,
            simdata=[SimData(self.base, values=list(self.registers), datatype=DataType.REGISTERS)],
            action=self._action,
        )
        self._server = ModbusTcpServer(
            device, address=("127.0.0.1", self.port), trace_packet=self._trace_packet
        )
        await self._server.serve_forever(background=True)

    @property
    def behaviour(self) -> Behaviour:
        return self._behaviour

    @behaviour.setter
    def behaviour(self, behaviour: Behaviour) -> None:
        self._behaviour = behaviour
        if behaviour == "silent":
            self._answering.clear()
        else:
            self._answering.set()

    async def stop(self) -> None:
        self._answering.set()  # requests held by a silent device end (too late for their client)
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None

    def update(self, model_id: int, **points: float | str) -> None:
        """Set points of one of its models (as ``model`` does) and serve them from the next request on."""
        m = self.models[model_id]
        for name, value in points.items():
            if name.endswith("_c"):
                m.points[name[:-2]].cvalue = value
            else:
                m.points[name].value = value
        start = self.addresses[model_id] - self.base
        data = _registers(m.get_mb())
        self.registers[start : start + len(data)] = data

    def read_back(self, model_id: int) -> Any:
        """One of its models as its registers hold it now (after the client's writes)."""
        m = sunspec_device.Model(model_id=model_id)
        start = self.addresses[model_id] - self.base
        data = self.registers[start : start + 2 + self.registers[start + 1]]
        m.set_mb(b"".join(v.to_bytes(2, "big") for v in data))
        return m

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        await self._answering.wait()
        if self.behaviour == "exception":
            return ExcCodes.DEVICE_FAILURE
        if set_values is not None:
            offset = address - self.base
            self.registers[offset : offset + len(set_values)] = [int(v) for v in set_values]
        registers[: len(self.registers)] = self.registers
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        """A garbled answer: its byte count and MBAP length two bytes short of the registers asked for."""
        if not sending or self.behaviour != "garbled" or len(data) < 11 or data[7] != 3:
            return data
        frame = bytearray(data[:-2])
        frame[4:6] = (int.from_bytes(data[4:6], "big") - 2).to_bytes(2, "big")
        frame[8] = data[8] - 2
        return bytes(frame)

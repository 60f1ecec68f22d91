"""SunSpec register images (pure): the model chain found at a base address, a model's points with their
scale factors, and what the site takes from them; no Modbus I/O here (that is ``devices.sunspec``).

The point layouts are SunSpec's own model definitions as pysunspec2 ships them, never offsets typed here,
so a model read is laid out exactly as the SunSpec Alliance publishes it.

Sign conventions (the site counts +import for grid, building and circuit meters, +production for PV and
+discharge for a battery, see ``site.config.MeterConfig.sign``):

- meters 201–204: the SunSpec meter specification counts real power W positive when energy is imported
  (flows from the grid into the premises) and negative on export, so W is taken as it is. Some devices
  count the other way (SolarEdge's E+I meter reports import negative); ``sign: -1`` turns them round.
- inverters 101–103, 111–113 and 701: AC power W is positive while generating (701 says so in its
  definition: "positive for DER generation and negative for absorption").
- battery 802: W is "total power flowing to/from the battery bank" with no sign in the definition; it is
  taken as positive on discharge (as most battery inverters report it), and ``sign: -1`` turns it round.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import sunspec2.device as sunspec_device

#: "SunS" in two registers: the start of a SunSpec register map
MARKER = (0x5375, 0x6E53)
#: where a SunSpec map may start, in the order a client tries them
BASE_ADDRESSES = (40000, 0, 50000)
END_MODEL_ID = 0xFFFF
MAX_MODELS = 64  # a chain longer than this is broken (a device that repeats itself), not a real map
MAX_READ = 125  # registers in one Modbus read (the protocol's limit)

METERS = frozenset({201, 202, 203, 204})
INVERTERS = frozenset({101, 102, 103, 111, 112, 113, 701})
STORAGE = frozenset({124, 802})
KNOWN = METERS | INVERTERS | STORAGE

#: 124's StorCtl_Mod bits: the charge limit (InWRte) and the discharge limit (OutWRte) are in force
STORCTL_CHARGE, STORCTL_DISCHARGE = 0x1, 0x2


class SunSpecError(ValueError):
    """A register image that is not SunSpec, or a model that cannot be used."""


@dataclass(frozen=True, slots=True)
class ModelBlock:
    model_id: int
    address: int  # of its ID register
    length: int  # L: the registers after the ID and L registers

    @property
    def registers(self) -> int:
        return self.length + 2


def is_marker(registers: Sequence[int]) -> bool:
    return tuple(registers[:2]) == MARKER


def chain_step(address: int, header: Sequence[int]) -> tuple[ModelBlock | None, int]:
    """The model whose (ID, L) header was read at ``address`` and the address of the next header; None at the
    end of the chain (ID 0xFFFF)."""
    if len(header) < 2:
        raise SunSpecError(f"a model header at {address} needs two registers, got {len(header)}")
    model_id, length = header[0], header[1]
    if model_id == END_MODEL_ID:
        return None, address
    return ModelBlock(model_id, address, length), address + 2 + length


def read_spans(block: ModelBlock) -> list[tuple[int, int]]:
    """(address, count) reads that cover a whole model, each within the protocol's limit."""
    spans = []
    address, left = block.address, block.registers
    while left > 0:
        count = min(left, MAX_READ)
        spans.append((address, count))
        address, left = address + count, left - count
    return spans


@cache
def _definition(model_id: int) -> Mapping[str, Any]:
    """The model's SunSpec definition (``{point name: its definition}`` of its top-level points)."""
    try:
        model = sunspec_device.Model(model_id=model_id)
    except Exception as err:  # pysunspec2 raises its own error types for unknown models
        raise SunSpecError(f"no SunSpec definition for model {model_id}: {err}") from err
    if model.model_def is None:
        raise SunSpecError(f"no SunSpec definition for model {model_id}")
    return {name: point.pdef for name, point in model.points.items()}


def point_offset(model_id: int, name: str) -> int:
    """The register offset of a point from the model's ID register."""
    model = sunspec_device.Model(model_id=model_id)
    point = model.points.get(name)
    if point is None:
        raise SunSpecError(f"model {model_id} has no point {name}")
    offset: int = point.offset
    return offset


def decode(model_id: int, registers: Sequence[int]) -> dict[str, float | int | None]:
    """A model's top-level points as raw values (None where the device marks a point not implemented:
    0x8000 for int16 and sunssf, 0xFFFF for uint16 and enum16, 0xFFFFFFFF, 0x80000000 and NaN for the
    32-bit and float types), from its registers starting with ID and L."""
    _definition(model_id)  # raises for an unknown model
    if len(registers) < 2 or registers[0] != model_id:
        raise SunSpecError(f"model {model_id}: registers do not start with its ID")
    data = b"".join((value & 0xFFFF).to_bytes(2, "big") for value in registers)
    try:
        model = sunspec_device.Model(model_id=model_id, model_len=registers[1], data=data)
        values: dict[str, float | int | None] = {}
        for name, point in model.points.items():
            value = point.value
            values[name] = value if isinstance(value, int | float) else None
    except Exception as err:  # pysunspec2's own errors, or struct's on a model cut short
        raise SunSpecError(f"model {model_id}: cannot decode its registers: {err}") from err
    return values


def scaled(model_id: int, points: Mapping[str, float | int | None], name: str) -> float | None:
    """A point's value with its scale factor applied (value × 10^SF); None where the point or its scale
    factor is not implemented, or the value is not a finite number."""
    definition = _definition(model_id).get(name)
    if definition is None:
        raise SunSpecError(f"model {model_id} has no point {name}")
    value = points.get(name)
    if value is None or not math.isfinite(value):
        return None
    sf_name = definition.get("sf")
    if sf_name is None:
        return float(value)
    if isinstance(sf_name, int):  # a fixed scale factor in the definition
        return float(value) * 10.0**sf_name
    sf = points.get(str(sf_name).strip())
    if sf is None:
        return None
    return float(value) * 10.0 ** int(sf)


@dataclass(frozen=True, slots=True)
class DeviceValues:
    """What the site takes from one SunSpec device, in the role it plays (SunSpec's own signs; the site
    file's ``sign`` is applied by the adapter)."""

    power_w: float | None
    current_a: tuple[float, float, float] | None = None
    soc_pct: float | None = None
    import_wh: float | None = None
    export_wh: float | None = None
    charge_max_w: float | None = None  # a battery's charge limit in force (124 WChaMax) or nameplate (802)
    discharge_max_w: float | None = None  # a battery's nameplate discharge limit (802 WDisChaRteMax)


def _first(models: Mapping[int, Mapping[str, float | int | None]], ids: frozenset[int]) -> int | None:
    found = sorted(m for m in models if m in ids)
    return found[0] if found else None


def meter_values(model_id: int, points: Mapping[str, float | int | None]) -> DeviceValues:
    """A meter (201–204): total real power, currents per phase (a three-phase meter's: where one of the
    three is not implemented, none is used; their direction is in the power's sign, so they count as
    magnitudes), energy imported and exported."""
    phases = [scaled(model_id, points, p) for p in ("AphA", "AphB", "AphC")]
    currents = None
    if all(c is not None for c in phases):
        a, b, c = (abs(x) for x in phases if x is not None)
        currents = (a, b, c)
    return DeviceValues(
        scaled(model_id, points, "W"),
        currents,
        import_wh=scaled(model_id, points, "TotWhImp"),
        export_wh=scaled(model_id, points, "TotWhExp"),
    )


def inverter_values(model_id: int, points: Mapping[str, float | int | None]) -> DeviceValues:
    """An inverter (101–103 with scale factors, 111–113 in float, 701): AC power and energy produced."""
    energy = "TotWhInj" if model_id == 701 else "WH"
    return DeviceValues(scaled(model_id, points, "W"), export_wh=scaled(model_id, points, energy))


def storage_values(models: Mapping[int, Mapping[str, float | int | None]]) -> DeviceValues:
    """A battery: state of charge from 802 (SoC) or 124 (ChaState); its power from 802's W, else from the
    AC power of an inverter model at the same unit (a battery inverter: positive while it discharges into
    the AC side); the charge limit in force from 124's WChaMax, else the nameplate ones from 802."""
    battery, basic = models.get(802), models.get(124)
    soc = power = charge_max = discharge_max = None
    if battery is not None:
        soc = scaled(802, battery, "SoC")
        power = scaled(802, battery, "W")
        charge_max = scaled(802, battery, "WChaRteMax")
        discharge_max = scaled(802, battery, "WDisChaRteMax")
    if basic is not None:
        if soc is None:
            soc = scaled(124, basic, "ChaState")
        limit = scaled(124, basic, "WChaMax")
        charge_max = limit if limit is not None else charge_max
    if power is None:
        inverter = _first(models, INVERTERS)
        if inverter is not None:
            power = scaled(inverter, models[inverter], "W")
    return DeviceValues(power, soc_pct=soc, charge_max_w=charge_max, discharge_max_w=discharge_max)


def device_values(role: str, models: Mapping[int, Mapping[str, float | int | None]]) -> DeviceValues:
    """What a device in ``role`` gives from the models it has (decoded ones, by model id); SunSpecError
    when it has none that the role can use."""
    if role == "battery":
        if not models.keys() & STORAGE:
            raise SunSpecError(f"no storage model (124 or 802) among {sorted(models)}")
        return storage_values(models)
    if role == "pv":
        inverter = _first(models, INVERTERS)
        if inverter is None:
            raise SunSpecError(f"no inverter model (101–103, 111–113, 701) among {sorted(models)}")
        return inverter_values(inverter, models[inverter])
    meter = _first(models, METERS)
    if meter is None:
        raise SunSpecError(f"no meter model (201–204) among {sorted(models)}")
    return meter_values(meter, models[meter])


def needed_models(role: str, found: Sequence[ModelBlock]) -> list[ModelBlock]:
    """The models a device in ``role`` is read for (the first of each id)."""
    wanted = STORAGE | INVERTERS if role == "battery" else INVERTERS if role == "pv" else METERS
    seen: dict[int, ModelBlock] = {}
    for block in found:
        if block.model_id in wanted and block.model_id not in seen:
            seen[block.model_id] = block
    return list(seen.values())


@dataclass(frozen=True, slots=True)
class RateWrite:
    """The registers to write to a 124 basic storage model for a battery setpoint."""

    rates_address: int  # OutWRte, then InWRte
    rates: tuple[int, int]
    mode_address: int  # StorCtl_Mod
    mode: int
    revert_address: int | None  # InOutWRte_RvrtTms, where the device implements it
    revert_s: int


def _int16(value: float) -> int:
    clamped = max(-0x7FFF, min(0x7FFF, round(value)))
    return clamped & 0xFFFF


def discharge_write(
    block: ModelBlock, points: Mapping[str, float | int | None], discharge_w: float, revert_s: int
) -> RateWrite:
    """The 124 writes that hold a battery at ``discharge_w`` (negative: charge), or SunSpecError if the
    model cannot express it.

    Both rates are percentages of WChaMax (124 has no discharge maximum of its own; Fronius and SolarEdge
    take WChaMax for both), and a negative rate forces the other direction: discharging x W is at most x W
    out (OutWRte) and at least x W out (InWRte = −x, a forced discharge); charging is the mirror; 0 holds
    the battery. Both limits are put in force (StorCtl_Mod) and revert after ``revert_s`` (RvrtTms), so a
    battery whose EMS went away goes back to its own control.
    """
    if block.model_id != 124:
        raise SunSpecError(f"model {block.model_id} takes no power setpoint")
    reference = scaled(124, points, "WChaMax")
    sf = points.get("InOutWRte_SF")
    if reference is None or reference <= 0 or sf is None:
        raise SunSpecError("the battery's WChaMax or InOutWRte_SF is not implemented: no setpoint possible")
    pct = max(-100.0, min(100.0, 100.0 * discharge_w / reference))
    raw = pct / 10.0 ** int(sf)
    revert = point_offset(124, "InOutWRte_RvrtTms")
    return RateWrite(
        block.address + point_offset(124, "OutWRte"),
        (_int16(raw), _int16(-raw)),
        block.address + point_offset(124, "StorCtl_Mod"),
        STORCTL_CHARGE | STORCTL_DISCHARGE,
        block.address + revert if points.get("InOutWRte_RvrtTms") is not None else None,
        max(0, min(0xFFFE, revert_s)),
    )

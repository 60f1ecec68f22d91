"""What a simulated station's meter reports, as OCPP meter values (pure).

One reading holds the energy import register (Wh), the active power (W), the current of each phase the
EV uses (A; a single-phase EV shows on L1 only, the station's own L1, whatever grid phase that is wired
to) and, where the EV tells it (2.0.1, ISO 15118), its state of charge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chargeflow.sim.ev import Draw


@dataclass(frozen=True, slots=True)
class Reading:
    measurand: str
    value: float
    unit: str
    phase: str | None = None
    location: str | None = None


def readings(taken: Draw, register_wh: int, soc: float | None = None) -> list[Reading]:
    out = [
        Reading("Energy.Active.Import.Register", float(register_wh), "Wh"),
        Reading("Power.Active.Import", round(taken.power_w, 1), "W"),
    ]
    out += [
        Reading("Current.Import", round(taken.current_a, 2), "A", f"L{k}") for k in range(1, taken.phases + 1)
    ]
    if soc is not None:
        out.append(Reading("SoC", round(100 * soc, 1), "Percent", location="EV"))
    return out


def _optional(reading: Reading) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if reading.phase is not None:
        extra["phase"] = reading.phase
    if reading.location is not None:
        extra["location"] = reading.location
    return extra


def meter_value_16(timestamp: str, items: list[Reading], context: str) -> dict[str, Any]:
    """A 1.6 MeterValue: values are strings, the unit a plain field."""
    sampled = [
        {"value": f"{r.value:g}", "measurand": r.measurand, "unit": r.unit, "context": context} | _optional(r)
        for r in items
    ]
    return {"timestamp": timestamp, "sampledValue": sampled}


def meter_value_201(timestamp: str, items: list[Reading], context: str) -> dict[str, Any]:
    """A 2.0.1 MeterValueType: values are numbers, the unit in unitOfMeasure."""
    sampled = [
        {"value": r.value, "measurand": r.measurand, "context": context, "unitOfMeasure": {"unit": r.unit}}
        | _optional(r)
        for r in items
    ]
    return {"timestamp": timestamp, "sampledValue": sampled}

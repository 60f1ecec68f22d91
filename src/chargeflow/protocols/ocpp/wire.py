"""Conversions between OCPP wire values and the CSM's types (timestamps, meter values)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from chargeflow.csm.model import BootDecision, MeterSample
from chargeflow.protocols.ocpp.connection import HandlerError
from chargeflow.protocols.ocpp.frames import ErrorKind


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp; one without an offset (a common quirk) is read as UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise HandlerError(ErrorKind.FORMAT, f"not an RFC 3339 timestamp: {value!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """UTC with a ``Z`` suffix and milliseconds, as every timestamp we send."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def samples_v16(meter_values: list[dict[str, Any]]) -> tuple[MeterSample, ...]:
    out: list[MeterSample] = []
    for meter_value in meter_values:
        at = parse_time(meter_value["timestamp"])
        for sv in meter_value["sampledValue"]:
            signed = sv["value"] if sv.get("format") == "SignedData" else None
            out.append(
                MeterSample(
                    timestamp=at,
                    value=sv["value"],
                    measurand=sv.get("measurand", "Energy.Active.Import.Register"),
                    phase=sv.get("phase"),
                    unit=sv.get("unit", "Wh"),
                    location=sv.get("location"),
                    context=sv.get("context"),
                    signed=signed,
                )
            )
    return tuple(out)


def _scaled(value: float | int, multiplier: int) -> str:
    if multiplier == 0:
        return repr(value)
    return repr(value * 10**multiplier)


def samples_v2(meter_values: list[dict[str, Any]]) -> tuple[MeterSample, ...]:
    out: list[MeterSample] = []
    for meter_value in meter_values:
        at = parse_time(meter_value["timestamp"])
        for sv in meter_value["sampledValue"]:
            unit = sv.get("unitOfMeasure", {})
            signed = sv.get("signedMeterValue")
            out.append(
                MeterSample(
                    timestamp=at,
                    value=_scaled(sv["value"], int(unit.get("multiplier", 0))),
                    measurand=sv.get("measurand", "Energy.Active.Import.Register"),
                    phase=sv.get("phase"),
                    unit=unit.get("unit", "Wh"),
                    location=sv.get("location"),
                    context=sv.get("context"),
                    signed=json.dumps(signed, separators=(",", ":")) if signed is not None else None,
                )
            )
    return tuple(out)


def boot_answer(decision: BootDecision) -> dict[str, Any]:
    """BootNotification's answer, the same in every version."""
    return {
        "status": "Accepted" if decision.accepted else "Rejected",
        "currentTime": format_time(decision.current_time),
        "interval": decision.interval_s,
    }

"""Conversions between OCPP wire values and the CSM's types (timestamps, meter values).

Every number and moment a station sends is checked here against the site's physical bounds
(``site.bounds``) before it reaches the CSM, and refused with a PropertyConstraintViolation naming the
value: a station with a broken clock or meter is told so, and no other station pays for its values.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from chargeflow.csm.model import BootDecision, MeterSample
from chargeflow.protocols.ocpp.connection import Handler, HandlerError, StationConnection
from chargeflow.protocols.ocpp.frames import ErrorKind
from chargeflow.site import bounds

# RFC 3339 (section 5.6) allows a lowercase "t" and "z" and a leap second (second 60), which the standard
# library's parser refuses; the leap second is read as the last moment of the second before it.
_LEAP_SECOND = re.compile(r"^(.{10}T\d\d:\d\d:)60(\.\d+)?")


def out_of_bounds(error: bounds.OutOfBounds) -> HandlerError:
    """The CALLERROR for a value outside its physical bound."""
    return HandlerError(ErrorKind.PROPERTY, str(error))


def parse_time(value: str, now: datetime | None = None, name: str = "timestamp") -> datetime:
    """An RFC 3339 timestamp in UTC; one without an offset (a common quirk) is read as UTC.

    Given ``now``, a moment outside the site's time window (``bounds.check_time``) is refused.
    """
    text = value.upper()
    leap = _LEAP_SECOND.match(text)
    if leap is not None:
        text = f"{leap.group(1)}59{leap.group(2) or ''}{text[leap.end() :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise HandlerError(ErrorKind.FORMAT, f"not an RFC 3339 timestamp: {value!r}") from None
    if leap is not None:
        parsed = parsed.replace(microsecond=999_999)
    try:
        moment = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is beyond the year 9999 in UTC
        raise HandlerError(ErrorKind.PROPERTY, f"{name} {value!r} is beyond the year 9999 in UTC") from None
    if now is not None:
        try:
            bounds.check_time(moment, now, name)
        except bounds.OutOfBounds as exc:
            raise out_of_bounds(exc) from None
    return moment


def format_time(moment: datetime) -> str:
    """UTC with a ``Z`` suffix and milliseconds, as every timestamp we send."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def check_id(value: Any, name: str) -> int:
    """An integer id or counter that the database's INTEGER column holds."""
    try:
        return bounds.check_id(int(value), name)
    except bounds.OutOfBounds as exc:
        raise out_of_bounds(exc) from None
    except (OverflowError, ValueError):  # an infinity or a NaN read by the lenient parser
        raise HandlerError(ErrorKind.PROPERTY, f"{name} is not a whole number") from None


def check_energy_wh(value: Any, name: str) -> int:
    """A meter register or an amount of energy in whole Wh."""
    try:
        return round(bounds.check_energy_wh(float(value), name, signed=True))
    except bounds.OutOfBounds as exc:
        raise out_of_bounds(exc) from None
    except OverflowError:  # an integer beyond any float
        raise HandlerError(ErrorKind.PROPERTY, f"{name} is beyond the range of a number") from None


def _nul_in(value: object) -> bool:
    """Whether any key or string in ``value`` holds a NUL (iterative: payloads may nest 1,000 deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if bounds.has_nul(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def without_nul(handler: Handler) -> Handler:
    """``handler`` for payloads without a NUL character, which PostgreSQL's text refuses in any column;
    a payload with one is refused with a PropertyConstraintViolation."""

    async def checked(conn: StationConnection, payload: dict[str, Any]) -> dict[str, Any]:
        if _nul_in(payload):
            raise HandlerError(ErrorKind.PROPERTY, "a string contains a NUL character")
        return await handler(conn, payload)

    return checked


def _check_sample(value: float, measurand: str, unit: str | None) -> None:
    """A plain reading, scaled to W, Wh or A, within the bound of its measurand."""
    scaled = value * 1000.0 if unit in ("kW", "kWh", "kvar", "kvarh", "kVA") else value
    if measurand.startswith("Energy"):
        bounds.check_energy_wh(scaled, measurand, signed=True)
    elif measurand.startswith("Power"):
        bounds.check_power_w(scaled, measurand)
    elif measurand.startswith("Current"):
        bounds.check_current_a(scaled, measurand, signed=True)
    else:  # voltage, frequency, temperature, SoC, RPM: finite and no larger than any register
        bounds.check_energy_wh(scaled, measurand, signed=True)


def _sample(
    at: datetime, value: str, sv: dict[str, Any], unit: str | None, signed: str | None, plain: bool
) -> MeterSample:
    """One sampled value; a ``plain`` one that reads as a number is checked against its bound."""
    sample = MeterSample(
        timestamp=at,
        value=value,
        measurand=sv.get("measurand", "Energy.Active.Import.Register"),
        phase=sv.get("phase"),
        unit=unit,
        location=sv.get("location"),
        context=sv.get("context"),
        signed=signed,
    )
    if plain:
        try:
            number = float(value)
        except ValueError:
            return sample  # an opaque value is kept as sent; the CSM reads only numbers
        try:
            _check_sample(number, sample.measurand, unit)
        except bounds.OutOfBounds as exc:
            raise out_of_bounds(exc) from None
    return sample


def samples_v16(meter_values: list[dict[str, Any]], now: datetime | None = None) -> tuple[MeterSample, ...]:
    out: list[MeterSample] = []
    for meter_value in meter_values:
        at = parse_time(meter_value["timestamp"], now, "meterValue.timestamp")
        for sv in meter_value["sampledValue"]:
            signed = sv["value"] if sv.get("format") == "SignedData" else None
            out.append(_sample(at, sv["value"], sv, sv.get("unit", "Wh"), signed, plain=signed is None))
    return tuple(out)


def _scaled(value: float | int, multiplier: int) -> str:
    """``value`` × 10^``multiplier`` as text; the multiplier is bounded, so this is one float product."""
    try:
        bounds.check_multiplier(multiplier)
        bounds.check_finite(float(value), "value")
    except bounds.OutOfBounds as exc:
        raise out_of_bounds(exc) from None
    except OverflowError:  # an integer beyond any float
        raise HandlerError(ErrorKind.PROPERTY, "value is beyond the range of a number") from None
    if multiplier == 0:
        return repr(value)
    return repr(value * 10**multiplier)


def samples_v2(meter_values: list[dict[str, Any]], now: datetime | None = None) -> tuple[MeterSample, ...]:
    out: list[MeterSample] = []
    for meter_value in meter_values:
        at = parse_time(meter_value["timestamp"], now, "meterValue.timestamp")
        for sv in meter_value["sampledValue"]:
            unit = sv.get("unitOfMeasure", {})
            signed = sv.get("signedMeterValue")
            value = _scaled(sv["value"], int(unit.get("multiplier", 0)))
            encoded = json.dumps(signed, separators=(",", ":")) if signed is not None else None
            out.append(_sample(at, value, sv, unit.get("unit", "Wh"), encoded, plain=True))
    return tuple(out)


def boot_answer(decision: BootDecision) -> dict[str, Any]:
    """BootNotification's answer, the same in every version."""
    return {
        "status": "Accepted" if decision.accepted else "Rejected",
        "currentTime": format_time(decision.current_time),
        "interval": decision.interval_s,
    }

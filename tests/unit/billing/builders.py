"""Small builders for tariffs (through the OCPI JSON edge) and sessions (as exact charging periods)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from chargeflow.billing.pricing import ChargingPeriod, SessionCost, Usage, price_session
from chargeflow.billing.schema import parse_tariff
from chargeflow.billing.tariff import Price, Tariff

UTC_ZONE = ZoneInfo("UTC")


def tariff(*elements: dict[str, Any], **top: Any) -> Tariff:
    return parse_tariff({"currency": "EUR", "elements": list(elements), **top}, "test tariff")


def element(*components: dict[str, Any], **restrictions: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"price_components": list(components)}
    if restrictions:
        out["restrictions"] = restrictions
    return out


def comp(kind: str, price: str, vat: str | None = None, step: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "price": Decimal(price), "step_size": step}
    if vat is not None:
        out["vat"] = Decimal(vat)
    return out


@dataclass(frozen=True)
class Seg:
    """A stretch of a session: ``kind`` is charge, park or reserve; minutes may be fractional."""

    minutes: float
    kind: str = "charge"
    kwh: str = "0"
    current_a: str | None = None
    power_kw: str | None = None


def charge(minutes: float, kwh: str = "0", current_a: str | None = None, power_kw: str | None = None) -> Seg:
    return Seg(minutes, "charge", kwh, current_a, power_kw)


def park(minutes: float) -> Seg:
    return Seg(minutes, "park")


def reserve(minutes: float) -> Seg:
    return Seg(minutes, "reserve")


def usage(start: datetime, *segs: Seg) -> Usage:
    t = start
    periods = []
    for s in segs:
        seconds = Decimal(str(s.minutes)) * 60
        periods.append(
            ChargingPeriod(
                start=t,
                energy_wh=Decimal(s.kwh) * 1000,
                charging_s=seconds if s.kind == "charge" else Decimal(0),
                parking_s=seconds if s.kind == "park" else Decimal(0),
                reservation_s=seconds if s.kind == "reserve" else Decimal(0),
                current_a=None if s.current_a is None else Decimal(s.current_a),
                power_w=None if s.power_kw is None else Decimal(s.power_kw) * 1000,
            )
        )
        t += timedelta(minutes=s.minutes)
    return Usage(start, t, tuple(periods))


def price(t: Tariff, start: datetime, *segs: Seg, tz: str = "UTC") -> SessionCost:
    return price_session(t, usage(start, *segs), ZoneInfo(tz))


def eur(excl: str, incl: str | None) -> Price:
    return Price(Decimal(excl), None if incl is None else Decimal(incl))

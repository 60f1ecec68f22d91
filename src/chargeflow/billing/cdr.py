"""Charge detail records from a finished session's meter values (TF-EVC use case EnCh; OCPI 2.2.1 CDR).

The rules, so that a driver can recompute the bill:

* Energy comes from the station's cumulative energy register (integer Wh). A period's energy is the rise of
  the register over it; where a period boundary falls between two samples the register is interpolated
  linearly and rounded down, so that the periods' energies add up exactly to the register's total rise.
* Parking time is the time the EV stays connected after the last rise of the register: charging ends at
  the first sample that shows the final register value. Pauses before that (e.g. smart charging holding
  the EV at 0 W) count as charging time, so a driver never pays parking while the site holds them back.
* A new charging period starts at every instant that can change the active tariff element (OCPI 2.2.1,
  CDR object, ChargingPeriod): the tariff's times of day, midnight where weekdays or dates matter, the
  duration and energy thresholds, the end of charging; and at every meter sample when the tariff has
  current or power restrictions, so that each period carries its own current and average power.
* Signed meter data (OCMF) are passed through unchanged, with the verdict of their signature check.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction

from chargeflow.billing.ocmf import OcmfCheck, check_all
from chargeflow.billing.pricing import (
    SECONDS_PER_HOUR,
    WH_PER_KWH,
    ChargingPeriod,
    CostKind,
    SessionCost,
    Usage,
    exact_seconds,
    price_session,
)
from chargeflow.billing.restrictions import time_boundaries
from chargeflow.billing.schema import price_json, utc_text
from chargeflow.billing.tariff import Tariff

_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class MeterSample:
    at: datetime  # timezone-aware
    energy_wh: int  # the cumulative energy register (import), not a delta
    current_a: float | None = None  # summed over the phases in use, as OCPI's CURRENT
    # No power field: a period's power is its average from the register (energy over time), which is
    # what was delivered, rather than an instantaneous reading at one end of it.


@dataclass(frozen=True, slots=True)
class FinishedSession:
    session_id: str
    evse_id: str
    id_token: str
    start: datetime  # the session's start (plug-in or authorisation)
    end: datetime  # the session's end (unplug or stop)
    samples: tuple[MeterSample, ...]
    signed_values: tuple[str, ...] = ()  # OCMF strings exactly as the station sent them
    meter_id: str | None = None


@dataclass(frozen=True, slots=True)
class Cdr:
    id: str
    session: FinishedSession
    tariff_id: str | None
    usage: Usage
    cost: SessionCost
    signature: OcmfCheck

    @property
    def total_energy_wh(self) -> int:
        return int(self.cost.total_energy_wh)


class MeterDataError(ValueError):
    """Meter values that cannot make a CDR (out of order, register running backwards, outside the session)."""


def build_cdr(
    cdr_id: str, session: FinishedSession, tariff: Tariff, tz: tzinfo, public_key: str | None = None
) -> Cdr:
    """The CDR of ``session`` under ``tariff``.

    ``tz`` is the site's time zone; ``public_key`` the meter's (hex or base64 DER), if known.
    """
    cuts = tariff_cuts(tariff, session.start, session.end, session.samples, tz)
    usage = usage_from_samples(
        session.start, session.end, session.samples, cuts, split_at_samples=needs_sample_periods(tariff)
    )
    return Cdr(
        id=cdr_id,
        session=session,
        tariff_id=tariff.id,
        usage=usage,
        cost=price_session(tariff, usage, tz),
        signature=check_all(session.signed_values, public_key),
    )


def usage_from_samples(
    start: datetime,
    end: datetime,
    samples: Sequence[MeterSample],
    cuts: Sequence[datetime] = (),
    *,
    split_at_samples: bool = False,
) -> Usage:
    """Charging periods from meter samples: cut at ``cuts``, at the end of charging, optionally at samples."""
    _check(start, end, samples)
    register = _Register(samples)
    charging_end = register.charging_end() or start
    instants = {start, end, charging_end, *(c for c in cuts if start < c < end)}
    if split_at_samples:
        instants.update(s.at for s in samples if start < s.at < end)
    bounds = sorted(instants)
    periods = []
    for a, b in itertools.pairwise(bounds):
        seconds = exact_seconds(b - a)
        charging = b <= charging_end
        sample = register.latest_at(a)
        periods.append(
            ChargingPeriod(
                start=a,
                energy_wh=Decimal(register.floor_at(b) - register.floor_at(a)),
                charging_s=seconds if charging else Decimal(0),
                parking_s=Decimal(0) if charging else seconds,
                current_a=_dec(sample.current_a) if sample and charging else None,
            )
        )
    if not periods:
        periods.append(ChargingPeriod(start=start))
    return Usage(start, end, tuple(periods))


def tariff_cuts(
    tariff: Tariff, start: datetime, end: datetime, samples: Sequence[MeterSample], tz: tzinfo
) -> list[datetime]:
    """Instants within the session at which an element of ``tariff`` may start or stop applying."""
    energies = {
        math.ceil(wh)
        for e in tariff.elements
        for wh in (e.restrictions.min_energy_wh, e.restrictions.max_energy_wh)
        if wh
    }
    register = _Register(samples)
    reached = [t for wh in energies if (t := register.time_reaching(wh)) is not None]
    cuts = time_boundaries(tariff, start, start, end, tz) + [t for t in reached if start < t < end]
    return sorted(set(cuts))


def energy_per_step(samples: Sequence[MeterSample], bounds: Sequence[datetime]) -> list[int]:
    """A session's energy in each step ``[bounds[k], bounds[k+1])`` of the site's step grid, for the
    source attribution: whole Wh, interpolated like the periods, adding up exactly to the register's rise
    from the first bound to the last."""
    if list(bounds) != sorted(bounds):
        raise MeterDataError("step bounds must be in time order")
    register = _Register(samples)
    floors = [register.floor_at(b) for b in bounds]
    return [b - a for a, b in itertools.pairwise(floors)]


def needs_sample_periods(tariff: Tariff) -> bool:
    """Whether the tariff has current or power restrictions, which need a period per meter interval."""
    return any(
        v is not None
        for r in (e.restrictions for e in tariff.elements)
        for v in (r.min_current_a, r.max_current_a, r.min_power_w, r.max_power_w)
    )


class _Register:
    """The cumulative energy register as a function of time: linear between samples, flat outside them."""

    def __init__(self, samples: Sequence[MeterSample]) -> None:
        self._samples = list(samples)
        self._base = samples[0].energy_wh if samples else 0

    def at(self, t: datetime) -> Fraction:
        s = self._samples
        if not s or t <= s[0].at:
            return Fraction(self._base)
        for a, b in itertools.pairwise(s):
            if t <= b.at:
                share = Fraction((t - a.at) // _MICROSECOND, (b.at - a.at) // _MICROSECOND)
                return a.energy_wh + share * (b.energy_wh - a.energy_wh)
        return Fraction(s[-1].energy_wh)

    def floor_at(self, t: datetime) -> int:
        return math.floor(self.at(t) - self._base)

    def charging_end(self) -> datetime | None:
        s = self._samples
        last_rise = None
        for a, b in itertools.pairwise(s):
            if b.energy_wh > a.energy_wh:
                last_rise = b.at
        return last_rise

    def latest_at(self, t: datetime) -> MeterSample | None:
        latest = None
        for s in self._samples:
            if s.at > t:
                break
            latest = s
        return latest

    def time_reaching(self, energy_wh: int) -> datetime | None:
        """The first instant (rounded up to the microsecond) at which the session has used ``energy_wh``."""
        target = self._base + energy_wh
        s = self._samples
        for a, b in itertools.pairwise(s):
            if a.energy_wh < target <= b.energy_wh:
                span_us = (b.at - a.at) // _MICROSECOND
                share = Fraction(target - a.energy_wh, b.energy_wh - a.energy_wh)
                return a.at + math.ceil(share * span_us) * _MICROSECOND
        return None


def _check(start: datetime, end: datetime, samples: Sequence[MeterSample]) -> None:
    if start.tzinfo is None or end.tzinfo is None or any(s.at.tzinfo is None for s in samples):
        raise MeterDataError("times must be timezone-aware")
    if end < start:
        raise MeterDataError("the session ends before it starts")
    for i, (a, b) in enumerate(itertools.pairwise(samples), start=1):
        if b.at <= a.at:
            raise MeterDataError(f"samples[{i}]: not after the sample before it")
        if b.energy_wh < a.energy_wh:
            raise MeterDataError(
                f"samples[{i}].energy_wh: the register runs backwards ({a.energy_wh} → {b.energy_wh})"
            )
    if samples and (samples[0].at < start or samples[-1].at > end):
        raise MeterDataError("samples must lie within the session")


def _dec(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def cdr_json(cdr: Cdr) -> dict[str, object]:
    """The CDR as OCPI 2.2.1 JSON (money as exact decimal strings, volumes as numbers in kWh and hours).

    The signature verdict is not an OCPI field; it travels under the ``chargeflow`` key.
    """
    s, cost = cdr.session, cdr.cost
    out: dict[str, object] = {
        "id": cdr.id,
        "start_date_time": utc_text(s.start),
        "end_date_time": utc_text(s.end),
        "session_id": s.session_id,
        "cdr_token": {"uid": s.id_token},
        "cdr_location": {"evse_id": s.evse_id},
        "meter_id": s.meter_id,
        "currency": cost.currency,
        "charging_periods": [_period_json(p, cdr.tariff_id) for p in cdr.usage.periods],
        "total_cost": price_json(cost.total_cost),
        "total_fixed_cost": price_json(cost.cost_of(CostKind.FIXED)),
        "total_energy": float(cost.total_energy_wh / WH_PER_KWH),
        "total_energy_cost": price_json(cost.cost_of(CostKind.ENERGY)),
        "total_time": float(cost.total_time_s / SECONDS_PER_HOUR),
        "total_time_cost": price_json(cost.cost_of(CostKind.TIME)),
        "total_parking_time": float(cost.total_parking_s / SECONDS_PER_HOUR),
        "total_parking_cost": price_json(cost.cost_of(CostKind.PARKING)),
        "chargeflow": {"signature": str(cdr.signature.status), "signature_reason": cdr.signature.reason},
    }
    if s.signed_values:
        n = len(s.signed_values)
        out["signed_data"] = {
            "encoding_method": "OCMF",
            "signed_values": [
                {"nature": _nature(i, n), "plain_data": "", "signed_data": value}
                for i, value in enumerate(s.signed_values)
            ],
        }
    return out


def _period_json(p: ChargingPeriod, tariff_id: str | None) -> dict[str, object]:
    dims: list[dict[str, object]] = [{"type": "ENERGY", "volume": float(p.energy_wh / WH_PER_KWH)}]
    if p.charging_s:
        dims.append({"type": "TIME", "volume": float(p.charging_s / SECONDS_PER_HOUR)})
    if p.parking_s:
        dims.append({"type": "PARKING_TIME", "volume": float(p.parking_s / SECONDS_PER_HOUR)})
    if p.current_a is not None:
        dims.append({"type": "CURRENT", "volume": float(p.current_a)})
    out: dict[str, object] = {"start_date_time": utc_text(p.start), "dimensions": dims}
    if tariff_id is not None:
        out["tariff_id"] = tariff_id
    return out


def _nature(i: int, n: int) -> str:
    if i == 0:
        return "Start"
    return "End" if i == n - 1 else "Intermediate"

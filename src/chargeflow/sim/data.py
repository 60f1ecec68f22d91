"""Loaders for the real data the simulator runs on: charging sessions (ACN-Data), building load and PV
profiles, day-ahead prices; and generated stand-ins where no file is given.

Profiles are kept as a year of values at a fixed interval, normalised to their peak, and looked up by
day of year and local time of day (linear between samples), so that a profile of one year can drive a
simulation of another. Prices are looked up by month, day and hour in the price file's first year that has
them: the 2019 sessions meet 2022's prices on the same calendar hour.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and the row."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One real charging session: when the EV came and went, and what the driver asked for."""

    id: str
    station_id: str
    arrival: datetime  # UTC
    departure: datetime  # UTC, when the EV really left
    estimated_departure: datetime  # UTC, what the driver said
    requested_wh: int
    delivered_wh: int


def _open_text(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            yield from f
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err})") from None


def load_sessions(path: Path) -> list[SessionRecord]:
    """Sessions from an ACN-Data CSV (gzip or plain), sorted by arrival."""
    rows = csv.DictReader(_open_text(path))
    out = []
    for n, row in enumerate(rows, start=2):
        try:
            arrival = datetime.fromisoformat(row["arrival"]).astimezone(UTC)
            departure = datetime.fromisoformat(row["departure"]).astimezone(UTC)
            estimated = datetime.fromisoformat(row["estimated_departure"]).astimezone(UTC)
            out.append(
                SessionRecord(
                    id=row.get("session_id") or f"row{n}",
                    station_id=row["station_id"],
                    arrival=arrival,
                    departure=departure,
                    estimated_departure=estimated,
                    requested_wh=round(float(row["requested_energy (kWh)"]) * 1000),
                    delivered_wh=round(float(row["delivered_energy (kWh)"]) * 1000),
                )
            )
        except (KeyError, ValueError, TypeError) as err:
            raise DataError(f"{path}, line {n}: {err}") from None
    if not out:
        raise DataError(f"{path}: no sessions")
    return sorted(out, key=lambda s: s.arrival)


@dataclass(frozen=True, slots=True)
class Profile:
    """A year of values at ``interval_s``, normalised to a peak of 1, read in local time of ``timezone``."""

    values: tuple[float, ...]
    interval_s: int
    timezone: str = "UTC"
    #: the weekday of the profile's first day (Monday 0), for profiles that follow the working week:
    #: the lookup then takes the nearest day of the profile with the same weekday as the day asked for
    first_weekday: int | None = None

    def at(self, t: datetime) -> float:
        local = t.astimezone(ZoneInfo(self.timezone))
        day = local.timetuple().tm_yday - 1
        if self.first_weekday is not None:
            shift = (local.weekday() - (self.first_weekday + day)) % 7
            day += shift - 7 if shift > 3 else shift
        seconds = day * 86400 + local.hour * 3600 + local.minute * 60 + local.second
        x = seconds / self.interval_s
        i = math.floor(x)
        n = len(self.values)
        a, b = self.values[i % n], self.values[(i + 1) % n]
        return a + (b - a) * (x - i)

    @classmethod
    def normalised(
        cls, values: list[float], interval_s: int, timezone: str, first_weekday: int | None = None
    ) -> Profile:
        peak = max(values)
        if peak <= 0:
            raise DataError("a profile needs at least one value above zero")
        return cls(tuple(max(v, 0.0) / peak for v in values), interval_s, timezone, first_weekday)


def load_building_profile(path: Path, timezone: str) -> Profile:
    """The DOE reference building's hourly ``Electricity:Facility [kW](Hourly)`` (hour-ending stamps)."""
    rows = csv.reader(_open_text(path))
    header = next(rows)
    try:
        col = next(i for i, h in enumerate(header) if h.startswith("Electricity:Facility") and "Hourly" in h)
    except StopIteration:
        raise DataError(f"{path}: no 'Electricity:Facility [kW](Hourly)' column") from None
    # Hour-ending stamps: the first row (01:00) is the hour from 00:00 to 01:00, so row k is hour k.
    # The reference year starts on a Sunday: its daily sums are low on days 0, 7, 14 … and on Saturdays.
    values = [float(r[col]) for r in rows if len(r) > col]
    return Profile.normalised(values, 3600, timezone, first_weekday=6)


def load_pv_profile(path: Path, timezone: str) -> Profile:
    """The SAM PV model's 30-minute DC power (``"Jan 1, 12:00 am",0``)."""
    rows = csv.reader(_open_text(path))
    next(rows)
    values = []
    for n, r in enumerate(rows, start=2):
        if len(r) < 2:
            continue
        try:
            values.append(float(r[1]))
        except ValueError:
            raise DataError(f"{path}, line {n}: not a number: {r[1]!r}") from None
    return Profile.normalised(values, 1800, timezone)


def synthetic_building_profile(timezone: str) -> Profile:
    """An office: 30 % base load at night and weekends, 100 % from 9:00 to 17:00 on working days."""
    values = []
    start = datetime(2025, 1, 1)  # noqa: DTZ001 - a naive local calendar, only weekdays and hours matter
    for h in range(365 * 24):
        t = start + timedelta(hours=h)
        working = t.weekday() < 5 and 8 <= t.hour < 18
        values.append(1.0 if working and 9 <= t.hour < 17 else 0.6 if working else 0.3)
    return Profile(tuple(values), 3600, timezone, first_weekday=start.weekday())


def synthetic_pv_profile(timezone: str) -> Profile:
    """Clear-sky PV at mid latitude: a half-sine from 6:00 to 18:00, higher and longer in summer."""
    values = []
    for h in range(365 * 24):
        day, hour = divmod(h, 24)
        season = 0.65 + 0.35 * math.cos(2 * math.pi * (day - 172) / 365)
        half_day = 5.0 + 2.0 * season
        x = (hour + 0.5 - 12.0) / half_day
        values.append(season * math.cos(x * math.pi / 2) if abs(x) < 1 else 0.0)
    return Profile.normalised(values, 3600, timezone)


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """Hourly energy prices per kWh, looked up by (month, day, hour) in UTC."""

    per_kwh: dict[tuple[int, int, int], Decimal]
    flat: Decimal

    def at(self, t: datetime) -> Decimal:
        u = t.astimezone(UTC)
        return self.per_kwh.get((u.month, u.day, u.hour), self.flat)


def load_prices(path: Path) -> PriceSeries:
    """Day-ahead prices in EUR/MWh (``Datetime (UTC)``, ``Price (EUR/MWhe)``), as EUR per kWh."""
    rows = csv.DictReader(_open_text(path))
    table: dict[tuple[int, int, int], Decimal] = {}
    for n, row in enumerate(rows, start=2):
        try:
            t = datetime.fromisoformat(row["Datetime (UTC)"])
            key = (t.month, t.day, t.hour)
            table.setdefault(key, Decimal(row["Price (EUR/MWhe)"]) / 1000)
        except (KeyError, ValueError, ArithmeticError) as err:
            raise DataError(f"{path}, line {n}: {err}") from None
    if not table:
        raise DataError(f"{path}: no prices")
    flat = sum(table.values(), Decimal(0)) / len(table)
    return PriceSeries(table, flat)

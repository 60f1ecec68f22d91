"""When a tariff element is active: the OCPI 2.2.1 TariffRestrictions rules, evaluated at one moment.

OCPI obliges the CPO to start a new charging period at every event that can change the active element
(mod_cdrs, "ChargingPeriod": "a new Charging Period at 17:00", "the moment the charging power goes over
32A"). So the restrictions are evaluated once per charging period, with the state at its start: local
time of day, date and weekday, energy and duration so far, and the period's current and power.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from decimal import Decimal
from enum import Enum

from chargeflow.billing.tariff import DayOfWeek, ReservationRestrictionType, Tariff, TariffRestrictions

MIDNIGHT = time(0, 0)


class ReservationState(Enum):
    NONE = "none"  # a charging or parking period
    RESERVED = "reserved"  # a reservation period that a charging session followed
    EXPIRED = "expired"  # a reservation period of a reservation that expired unused


@dataclass(frozen=True, slots=True)
class Moment:
    """What the restrictions look at, at the start of one charging period."""

    local: datetime  # wall-clock time at the site (aware, in the site's time zone)
    energy_so_far_wh: Decimal  # energy charged in the session before this period
    duration_so_far_s: Decimal  # time since the charging session started
    current_a: Decimal | None = None  # sum over phases, as OCPI's min/max_current
    power_w: Decimal | None = None
    reservation: ReservationState = ReservationState.NONE


def holds(r: TariffRestrictions, m: Moment) -> bool:
    """True when every restriction of ``r`` holds at ``m`` (an element without restrictions always holds)."""
    day = m.local.date()
    return (
        _reservation_matches(r.reservation, m.reservation)
        and in_time_window(r.start_time, r.end_time, m.local.time())
        and (r.start_date is None or day >= r.start_date)
        and (r.end_date is None or day < r.end_date)
        and (not r.day_of_week or DayOfWeek.of(day) in r.day_of_week)
        and _within(m.energy_so_far_wh, r.min_energy_wh, r.max_energy_wh)
        and _within(m.duration_so_far_s, _dec(r.min_duration_s), _dec(r.max_duration_s))
        and _within(m.current_a, r.min_current_a, r.max_current_a)
        and _within(m.power_w, r.min_power_w, r.max_power_w)
    )


def in_time_window(start: time | None, end: time | None, t: time) -> bool:
    """OCPI start_time (inclusive) to end_time (exclusive); end before start wraps past midnight.

    A missing start means 00:00, a missing end and an end of 00:00 mean the end of the day, and equal
    start and end mean the whole day.
    """
    if start is None and end is None:
        return True
    lo = start or MIDNIGHT
    hi = end or MIDNIGHT
    if lo == hi:
        return True
    if lo < hi:
        return lo <= t < hi
    return t >= lo or t < hi


def _reservation_matches(wanted: ReservationRestrictionType | None, state: ReservationState) -> bool:
    # An element without a reservation restriction prices charging and parking only; a RESERVATION
    # element prices any reservation, a RESERVATION_EXPIRES element only one that expired unused.
    if wanted is None:
        return state is ReservationState.NONE
    if wanted is ReservationRestrictionType.RESERVATION:
        return state is not ReservationState.NONE
    return state is ReservationState.EXPIRED


def _within(value: Decimal | None, lo: Decimal | None, hi: Decimal | None) -> bool:
    if lo is None and hi is None:
        return True
    if value is None:
        # A restriction on a quantity the period does not report cannot be shown to hold.
        return False
    return (lo is None or value >= lo) and (hi is None or value < hi)


def _dec(seconds: int | None) -> Decimal | None:
    return None if seconds is None else Decimal(seconds)


def time_boundaries(
    tariff: Tariff, origin: datetime, start: datetime, end: datetime, tz: tzinfo
) -> list[datetime]:
    """Instants strictly between ``start`` and ``end`` at which the passing of time alone can switch an
    element of ``tariff`` on or off: its times of day and, where weekdays or dates matter, midnight (local,
    in ``tz``), and its duration thresholds counted from ``origin``, the start of the charging session."""
    wall: set[time] = set()
    offsets: set[int] = set()
    for element in tariff.elements:
        r = element.restrictions
        wall.update(t for t in (r.start_time, r.end_time) if t is not None)
        if r.day_of_week or r.start_date or r.end_date:
            wall.add(MIDNIGHT)
        offsets.update(s for s in (r.min_duration_s, r.max_duration_s) if s)
    found = [origin + timedelta(seconds=s) for s in offsets]
    day = start.astimezone(tz).date()
    while day <= end.astimezone(tz).date():
        found.extend(datetime.combine(day, t, tzinfo=tz) for t in wall)
        day += timedelta(days=1)
    return sorted({b for b in found if start < b < end})

"""Each OCPI 2.2.1 TariffRestriction on its own, at its boundaries."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from chargeflow.billing.restrictions import Moment, ReservationState, holds, in_time_window
from chargeflow.billing.tariff import DayOfWeek, ReservationRestrictionType, TariffRestrictions

VIENNA = ZoneInfo("Europe/Vienna")
TUESDAY_1000 = datetime(2019, 6, 4, 10, 0, tzinfo=VIENNA)


def moment(**over: Any) -> Moment:
    base: dict[str, Any] = {
        "local": TUESDAY_1000,
        "energy_so_far_wh": Decimal(0),
        "duration_so_far_s": Decimal(0),
        "current_a": Decimal(16),
        "power_w": Decimal(11000),
    }
    base.update(over)
    return Moment(**base)


def t(text: str | None) -> time | None:
    return None if text is None else time.fromisoformat(text)


@pytest.mark.parametrize(
    ("start", "end", "now", "active"),
    [
        ("09:00", "18:00", "09:00", True),  # start inclusive
        ("09:00", "18:00", "17:59", True),
        ("09:00", "18:00", "18:00", False),  # end exclusive
        ("09:00", "18:00", "08:59", False),
        ("22:00", "06:00", "23:30", True),  # wraps past midnight
        ("22:00", "06:00", "00:00", True),
        ("22:00", "06:00", "05:59", True),
        ("22:00", "06:00", "06:00", False),
        ("22:00", "06:00", "12:00", False),
        ("17:00", "00:00", "23:59", True),  # 00:00 ends at the end of the day
        ("17:00", "00:00", "16:59", False),
        ("17:00", None, "23:59", True),  # no end: until the end of the day
        (None, "07:00", "00:00", True),  # no start: from 00:00
        (None, "07:00", "07:00", False),
        ("00:00", "00:00", "12:00", True),  # equal start and end: the whole day
        (None, None, "03:00", True),
    ],
)
def test_time_of_day_window(start: str | None, end: str | None, now: str, active: bool) -> None:
    assert in_time_window(t(start), t(end), time.fromisoformat(now)) is active


def test_no_restrictions_always_hold() -> None:
    assert holds(TariffRestrictions(), moment())


@pytest.mark.parametrize(
    ("restrictions", "at", "active"),
    [
        (TariffRestrictions(start_date=date(2019, 6, 4)), moment(), True),  # start date inclusive
        (TariffRestrictions(start_date=date(2019, 6, 5)), moment(), False),
        (TariffRestrictions(end_date=date(2019, 6, 4)), moment(), False),  # end date exclusive
        (TariffRestrictions(end_date=date(2019, 6, 5)), moment(), True),
        (TariffRestrictions(day_of_week=frozenset({DayOfWeek.TUESDAY})), moment(), True),
        (TariffRestrictions(day_of_week=frozenset({DayOfWeek.SATURDAY, DayOfWeek.SUNDAY})), moment(), False),
        (TariffRestrictions(min_energy_wh=Decimal(1000)), moment(energy_so_far_wh=Decimal(1000)), True),
        (TariffRestrictions(min_energy_wh=Decimal(1000)), moment(energy_so_far_wh=Decimal(999)), False),
        (TariffRestrictions(max_energy_wh=Decimal(1000)), moment(energy_so_far_wh=Decimal(999)), True),
        (TariffRestrictions(max_energy_wh=Decimal(1000)), moment(energy_so_far_wh=Decimal(1000)), False),
        (TariffRestrictions(min_duration_s=1800), moment(duration_so_far_s=Decimal(1800)), True),
        (TariffRestrictions(min_duration_s=1800), moment(duration_so_far_s=Decimal(1799)), False),
        (TariffRestrictions(max_duration_s=1800), moment(duration_so_far_s=Decimal(1800)), False),
        (TariffRestrictions(max_duration_s=1800), moment(duration_so_far_s=Decimal(1799)), True),
        (TariffRestrictions(min_current_a=Decimal(16)), moment(), True),
        (TariffRestrictions(min_current_a=Decimal(17)), moment(), False),
        (TariffRestrictions(max_current_a=Decimal(16)), moment(), False),
        (TariffRestrictions(max_current_a=Decimal(32)), moment(), True),
        (TariffRestrictions(min_current_a=Decimal(6)), moment(current_a=None), False),  # not reported
        (TariffRestrictions(min_power_w=Decimal(11000)), moment(), True),
        (TariffRestrictions(max_power_w=Decimal(11000)), moment(), False),
        (TariffRestrictions(max_power_w=Decimal(22000)), moment(), True),
        (TariffRestrictions(max_power_w=Decimal(22000)), moment(power_w=None), False),
    ],
)
def test_each_restriction(restrictions: TariffRestrictions, at: Moment, active: bool) -> None:
    assert holds(restrictions, at) is active


def test_all_restrictions_must_hold() -> None:
    r = TariffRestrictions(day_of_week=frozenset({DayOfWeek.TUESDAY}), start_time=time(11, 0))
    assert not holds(r, moment())
    assert holds(r, moment(local=TUESDAY_1000.replace(hour=11)))


def test_day_of_week_is_the_local_day() -> None:
    # 23:30 UTC on a Monday is already Tuesday in Vienna.
    utc_monday_late = datetime(2019, 6, 3, 23, 30, tzinfo=ZoneInfo("UTC"))
    r = TariffRestrictions(day_of_week=frozenset({DayOfWeek.TUESDAY}))
    assert holds(r, moment(local=utc_monday_late.astimezone(VIENNA)))
    assert not holds(r, moment(local=utc_monday_late))


RES = ReservationRestrictionType


@pytest.mark.parametrize(
    ("wanted", "state", "active"),
    [
        (None, ReservationState.NONE, True),
        (None, ReservationState.RESERVED, False),
        (RES.RESERVATION, ReservationState.NONE, False),
        (RES.RESERVATION, ReservationState.RESERVED, True),
        (RES.RESERVATION, ReservationState.EXPIRED, True),
        (RES.RESERVATION_EXPIRES, ReservationState.RESERVED, False),
        (RES.RESERVATION_EXPIRES, ReservationState.EXPIRED, True),
    ],
)
def test_reservation_restriction(
    wanted: ReservationRestrictionType | None, state: ReservationState, active: bool
) -> None:
    assert holds(TariffRestrictions(reservation=wanted), moment(reservation=state)) is active

"""step_size as the CDR module of OCPI 2.2.1 states it, with its own examples and the Tariffs module's
step_size example tariff; time-of-day boundaries crossed within a session."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from chargeflow.billing.pricing import CostKind, ceil_to_step

from .builders import charge, comp, element, park, price, tariff

DAY = datetime(2019, 6, 4, 10, 0, tzinfo=UTC)  # a Tuesday


def at(hh: int, mm: int) -> datetime:
    return DAY.replace(hour=hh, minute=mm)


@pytest.mark.parametrize(("step", "expected"), [(1, "0.029"), (25, "0.03125"), (500, "0.125")])
def test_energy_step_multiplier_is_one_wh(step: int, expected: str) -> None:
    # 115.2 Wh is billed as 116, 125 or 500 Wh.
    t = tariff(element(comp("ENERGY", "0.25", step=step)))
    assert price(t, DAY, charge(5, kwh="0.1152")).total_cost.excl_vat == Decimal(expected)


def test_charging_time_followed_by_parking_is_not_rounded() -> None:
    # Both step 5 minutes; 21 minutes charging then 7 minutes parked: 21 and 10 minutes are billed.
    t = tariff(element(comp("TIME", "6.00", step=300), comp("PARKING_TIME", "6.00", step=300)))
    cost = price(t, DAY, charge(21, "5"), park(7))
    assert cost.cost_of(CostKind.TIME).excl_vat == Decimal("2.10")
    assert cost.cost_of(CostKind.PARKING).excl_vat == Decimal("1.00")


def test_parking_total_is_rounded_once() -> None:
    # Charging 21 minutes, parked 16: parking is billed as 20 minutes, charging as 21.
    t = tariff(element(comp("TIME", "1.00", step=600), comp("PARKING_TIME", "3.00", step=600)))
    cost = price(t, DAY, charge(21), park(16))
    assert cost.total_cost.excl_vat == Decimal("0.35") + Decimal("1.00")


def test_energy_total_is_rounded_with_the_last_step_and_billed_at_the_last_price() -> None:
    # 0.20 per kWh before 17:00 and 0.27 after, both 500 Wh steps: 4.3 + 1.1 kWh is billed as 5.5 kWh,
    # of which 1.2 kWh after 17:00 (not 1.5 kWh).
    t = tariff(
        element(comp("ENERGY", "0.20", step=500), end_time="17:00"),
        element(comp("ENERGY", "0.27", step=500), start_time="17:00"),
    )
    cost = price(t, at(15, 0), charge(120, "4.3"), charge(60, "1.1"))
    assert [line.billed for line in cost.lines] == [4300, 1200]
    assert cost.total_cost.excl_vat == Decimal("0.86") + Decimal("0.324")


def test_time_total_is_rounded_across_a_17_00_switch() -> None:
    # 5 per hour before 17:00, 7 after, both 10-minute steps: 6 + 22 minutes are billed as 6 + 24.
    t = tariff(
        element(comp("TIME", "5.00", step=600), end_time="17:00"),
        element(comp("TIME", "7.00", step=600), start_time="17:00"),
    )
    cost = price(t, at(16, 54), charge(6), charge(22))
    assert cost.total_cost.excl_vat == Decimal("0.50") + Decimal("2.80")


def test_step_size_of_the_last_component_counts_even_when_it_is_finer() -> None:
    # The 30-minute step before 17:00 is not used once the session moves on to the 15-minute element.
    t = STEP_EXAMPLE
    cost = price(t, at(16, 35), charge(25), charge(10))
    assert cost.total_cost.excl_vat == Decimal("1.30")  # 25 min at 1.20 + 20 min at 2.40: the spec's 1.30


STEP_EXAMPLE = tariff(
    element(
        comp("TIME", "1.20", step=1800),
        comp("PARKING_TIME", "1.00", step=900),
        start_time="00:00",
        end_time="17:00",
    ),
    element(
        comp("TIME", "2.40", step=900),
        comp("PARKING_TIME", "1.00", step=900),
        start_time="17:00",
        end_time="20:00",
    ),
    element(comp("TIME", "2.40", step=900), start_time="20:00", end_time="23:59"),
)


def test_step_example_switching_element_then_parking() -> None:
    # 16:55 to 17:05 charging, 2 minutes parked. With priced parking only the parking total is rounded:
    # 5 min at 1.20 + 5 min at 2.40 + 15 min parking at 1.00 = 0.55. (The Tariffs module's prose bills
    # 0.50 by rounding the charging time instead; the CDR module's rule and the OCPI maintainers' reading
    # in ocpi/ocpi#546 round only the parking.)
    cost = price(STEP_EXAMPLE, at(16, 55), charge(5), charge(5), park(2))
    assert cost.cost_of(CostKind.TIME).excl_vat == Decimal("0.30")
    assert cost.cost_of(CostKind.PARKING).excl_vat == Decimal("0.25")


def test_step_example_switching_to_free_parking() -> None:
    # 19:55 to 20:05 charging, then 2 minutes of parking after 20:00, which is free: the charging total is
    # rounded to 15 minutes with the last step, 5 min + 10 min at 2.40 = 0.60, as the spec says.
    cost = price(STEP_EXAMPLE, at(19, 55), charge(5), charge(5), park(2))
    assert cost.total_cost.excl_vat == Decimal("0.60")
    assert cost.cost_of(CostKind.PARKING).excl_vat == 0


def test_energy_rounding_lands_in_the_last_period_with_energy() -> None:
    # The case discussed in ocpi/ocpi#494: 3 + 3 + 3 kWh under 2/5/2 per kWh, 10 kWh steps → the last
    # period is billed 4 kWh: 6 + 15 + 8 = 29.
    t = tariff(
        element(comp("ENERGY", "2", step=10000), max_current="20"),
        element(comp("ENERGY", "5", step=10000), min_current="20"),
    )
    cost = price(
        t,
        DAY,
        charge(60, "3", current_a="10"),
        charge(60, "3", current_a="40"),
        charge(60, "3", current_a="10"),
    )
    assert cost.total_cost.excl_vat == 29


def test_time_of_day_is_local_to_the_site() -> None:
    # 16:30 to 17:30 in Vienna in winter is 15:30 to 16:30 UTC; the period is split at 17:00 local.
    t = tariff(
        element(comp("ENERGY", "0.30"), start_time="07:00", end_time="17:00"),
        element(comp("ENERGY", "0.20")),
    )
    winter = datetime(2024, 1, 15, 15, 30, tzinfo=UTC)
    local = price(t, winter, charge(30, "5"), charge(30, "5"), tz="Europe/Vienna")
    assert local.total_cost.excl_vat == Decimal("1.50") + Decimal("1.00")
    in_utc = price(t, winter, charge(30, "5"), charge(30, "5"), tz="UTC")
    assert in_utc.total_cost.excl_vat == Decimal("3.00")


def test_night_rate_wraps_past_midnight() -> None:
    t = tariff(
        element(comp("ENERGY", "0.10"), start_time="22:00", end_time="06:00"),
        element(comp("ENERGY", "0.30")),
    )
    evening = DAY.replace(hour=21)
    cost = price(t, evening, charge(60, "10"), charge(120, "10"), charge(360, "10"), charge(60, "10"))
    # 21:00 day rate, 22:00 and 00:00 night rate, 06:00 day rate again (end time exclusive).
    assert [line.component.price for line in cost.lines] == [
        Decimal("0.30"),
        Decimal("0.10"),
        Decimal("0.10"),
        Decimal("0.30"),
    ]
    assert cost.total_cost.excl_vat == 8


@pytest.mark.parametrize(
    ("amount", "step", "expected"),
    [
        ("0", 300, "0"),
        ("1", 300, "300"),
        ("300", 300, "300"),
        ("300.0001", 300, "600"),
        ("115.2", 1, "116"),
        ("7", 0, "7"),
    ],
)
def test_ceil_to_step(amount: str, step: int, expected: str) -> None:
    assert ceil_to_step(Decimal(amount), step) == Decimal(expected)


EVENING = tariff(element(comp("ENERGY", "0.30"), end_time="17:00"), element(comp("ENERGY", "0.45")))


def test_a_period_across_a_tariff_switch_is_reported() -> None:
    # OCPI obliges the CPO to start a period at 17:00; a CDR that does not is priced as at the period's
    # start, and the crossing is reported.
    unsplit = price(EVENING, at(16, 30), charge(60, "10"))
    assert unsplit.total_cost.excl_vat == 3
    assert [(w.period_index, w.at) for w in unsplit.unsplit] == [(0, at(17, 0))]
    split = price(EVENING, at(16, 30), charge(30, "5"), charge(30, "5"))
    assert split.total_cost.excl_vat == Decimal("3.75")
    assert split.unsplit == ()


def test_a_boundary_that_changes_nothing_is_not_reported() -> None:
    every_day = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
    t = tariff(element(comp("ENERGY", "0.30"), day_of_week=every_day))
    assert price(t, at(23, 0), charge(120, "10")).unsplit == ()
    weekdays = tariff(
        element(comp("ENERGY", "0.30"), day_of_week=every_day[:5]), element(comp("ENERGY", "0.20"))
    )
    friday_night = datetime(2019, 6, 7, 23, 0, tzinfo=UTC)
    assert [w.at for w in price(weekdays, friday_night, charge(120, "10")).unsplit] == [
        friday_night.replace(day=8, hour=0)
    ]


def test_duration_thresholds_inside_a_period_are_reported() -> None:
    t = tariff(element(comp("ENERGY", "0.00"), max_duration=1800), element(comp("ENERGY", "0.25")))
    assert [w.at for w in price(t, at(10, 0), charge(40, "8")).unsplit] == [at(10, 30)]

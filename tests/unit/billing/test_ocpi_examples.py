"""The tariff examples of OCPI 2.2.1 (module Tariffs, "Examples"), priced on hand-worked sessions.

Where the example's prose disagrees with the CDR module's normative step_size rules, the test follows the
rules and says why (see docs/billing.md, "step_size").
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chargeflow.billing.pricing import CostKind

from .builders import charge, comp, element, eur, park, price, reserve, tariff

MONDAY_0930 = datetime(2019, 6, 3, 9, 30, tzinfo=UTC)
SATURDAY_1330 = datetime(2019, 6, 8, 13, 30, tzinfo=UTC)

START_FEE = element(comp("FLAT", "0.50", "20"))
ENERGY_025 = element(comp("ENERGY", "0.25", "10"))


def test_simple_025_per_kwh() -> None:
    cost = price(tariff(ENERGY_025), MONDAY_0930, charge(120, kwh="20"))
    assert cost.total_cost == eur("5.00", "5.50")
    assert cost.cost_of(CostKind.ENERGY) == eur("5.00", "5.50")


def test_025_per_kwh_with_start_fee() -> None:
    cost = price(tariff(START_FEE, ENERGY_025), MONDAY_0930, charge(120, kwh="20"))
    assert cost.total_cost == eur("5.50", "6.10")
    assert cost.cost_of(CostKind.FIXED) == eur("0.50", "0.60")


@pytest.mark.parametrize(("kwh", "expected"), [("20", eur("5.00", "5.50")), ("1", eur("0.50", "0.55"))])
def test_025_per_kwh_with_min_price(kwh: str, expected: object) -> None:
    t = tariff(ENERGY_025, min_price={"excl_vat": "0.50", "incl_vat": "0.55"})
    cost = price(t, MONDAY_0930, charge(60, kwh=kwh))
    assert cost.total_cost == expected


def test_min_price_does_not_change_the_energy_cost() -> None:
    t = tariff(ENERGY_025, min_price={"excl_vat": "0.50", "incl_vat": "0.55"})
    cost = price(t, MONDAY_0930, charge(60, kwh="1"))
    assert cost.cost_of(CostKind.ENERGY) == eur("0.25", "0.275")
    assert cost.total_cost == eur("0.50", "0.55")


def test_025_per_kwh_parking_and_start_fee() -> None:
    t = tariff(START_FEE, ENERGY_025, element(comp("PARKING_TIME", "2.00", "20", step=900)))
    cost = price(t, MONDAY_0930, charge(120, kwh="20"), park(40))
    assert cost.total_cost == eur("7.00", "7.90")
    assert cost.cost_of(CostKind.PARKING) == eur("1.50", "1.80")  # 40 minutes billed as 45


@pytest.mark.parametrize(("kwh", "expected"), [("50", eur("10", "11")), ("30", eur("8.00", "8.85"))])
def test_start_fee_and_max_price(kwh: str, expected: object) -> None:
    t = tariff(
        START_FEE,
        ENERGY_025,
        max_price={"excl_vat": "10.00", "incl_vat": "11.00"},
        end_date_time="2019-06-30T23:59:59Z",
    )
    assert price(t, MONDAY_0930, charge(120, kwh=kwh)).total_cost == expected


def test_simple_2_euro_per_hour_charging_only() -> None:
    t = tariff(element(comp("TIME", "2.00", "10", step=60)))
    cost = price(t, MONDAY_0930, charge(150, kwh="30"), park(30))
    assert cost.total_cost == eur("5.00", "5.50")  # parking is not priced by this tariff


def test_3_euro_per_hour_5_euro_parking() -> None:
    t = tariff(element(comp("TIME", "3.00", "10", step=60), comp("PARKING_TIME", "5.00", "20", step=300)))
    cost = price(t, MONDAY_0930, charge(150, kwh="30"), park(42))
    assert cost.cost_of(CostKind.TIME) == eur("7.50", "8.25")
    assert cost.cost_of(CostKind.PARKING) == eur("3.75", "4.50")  # 42 minutes billed as 45
    assert cost.total_cost == eur("11.25", "12.75")


def test_ad_hoc_alt_text_tariff_is_not_rounded() -> None:
    t = tariff(element(comp("TIME", "1.90", "5.2", step=300)), type="AD_HOC_PAYMENT")
    # The spec prints 5.00 incl. VAT; 4.75 × 1.052 is exactly 4.997: money is not rounded here (OCPI leaves
    # rounding to law and contract).
    assert price(t, MONDAY_0930, charge(150)).total_cost == eur("4.75", "4.997")


def test_energy_billed_per_100_wh() -> None:
    t = tariff(element(comp("ENERGY", "0.25", "10", step=100)))
    cost = price(t, MONDAY_0930, charge(90, kwh="20.45"))
    # 20.45 kWh is billed as 20.5 kWh. (The spec's prose says 5.50 euro; 20.5 × 0.25 is 5.125.)
    assert cost.total_cost == eur("5.125", "5.6375")
    assert cost.lines[0].billed == 20500


COMPLEX = tariff(
    element(comp("FLAT", "2.50", "15")),
    element(comp("TIME", "1.00", "20", step=900), max_current="32.00"),
    element(
        comp("TIME", "2.00", "20", step=600),
        min_current="32.00",
        day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
    ),
    element(comp("TIME", "1.25", "20", step=600), min_current="32.00", day_of_week=["SATURDAY", "SUNDAY"]),
    element(
        comp("PARKING_TIME", "5.00", "10", step=300),
        start_time="09:00",
        end_time="18:00",
        day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
    ),
    element(
        comp("PARKING_TIME", "6.00", "10", step=300),
        start_time="10:00",
        end_time="17:00",
        day_of_week=["SATURDAY"],
    ),
)


def test_complex_tariff_monday_morning() -> None:
    cost = price(COMPLEX, MONDAY_0930, charge(147, kwh="10", current_a="16"), park(42))
    assert cost.cost_of(CostKind.FIXED) == eur("2.50", "2.875")
    # Charging is followed by priced parking, so only the parking total is rounded (CDR module,
    # step_size); the example's prose rounds the 147 charging minutes as well (8.75 euro).
    assert cost.cost_of(CostKind.TIME) == eur("2.45", "2.94")
    assert cost.cost_of(CostKind.PARKING) == eur("3.75", "4.125")
    assert cost.total_cost == eur("8.70", "9.94")


def test_complex_tariff_saturday_afternoon() -> None:
    cost = price(COMPLEX, SATURDAY_1330, charge(114, kwh="40", current_a="43"), park(71))
    assert cost.cost_of(CostKind.TIME) == eur("2.375", "2.85")  # 114 minutes at the weekend rate
    assert cost.cost_of(CostKind.PARKING) == eur("7.50", "8.25")  # 71 minutes billed as 75
    assert cost.total_cost == eur("12.375", "13.975")


def test_free_of_charge() -> None:
    cost = price(tariff(element(comp("FLAT", "0.00"))), MONDAY_0930, charge(60, kwh="10"), park(60))
    assert cost.total_cost == eur("0", None)


def test_first_kwh_and_first_hour_free() -> None:
    t = tariff(
        element(comp("PARKING_TIME", "0.0", step=60), min_duration=0, max_duration=3600),
        element(comp("PARKING_TIME", "2.0", step=60), min_duration=3600, max_duration=10800),
        element(comp("PARKING_TIME", "3.0", step=60), min_duration=10800),
        element(comp("ENERGY", "0.0"), max_kwh="1.0"),
        element(comp("ENERGY", "0.2"), min_kwh="1.0"),
    )
    # Charging 20 kWh in one hour (split at 1 kWh), then 2.75 h parked (split where 3 h of session pass).
    # Durations count from the start of the session, so parking from 1:00 to 3:00 costs 2 euro/h and
    # from 3:00 to 3:45 3 euro/h. No VAT is given, so the price incl. VAT is unknown.
    cost = price(t, MONDAY_0930, charge(3, kwh="1"), charge(57, kwh="19"), park(120), park(45))
    assert cost.cost_of(CostKind.ENERGY) == eur("3.80", None)
    assert cost.cost_of(CostKind.PARKING) == eur("6.25", None)
    assert cost.total_cost == eur("10.05", None)


def test_max_power_restriction() -> None:
    t = tariff(
        element(comp("ENERGY", "0.20", "20"), max_power="16.00"),
        element(comp("ENERGY", "0.35", "20"), max_power="32.00"),
        element(comp("ENERGY", "0.50", "20")),
    )
    given = price(
        t,
        MONDAY_0930,
        charge(10, "1", power_kw="6"),
        charge(50, "40", power_kw="48"),
        charge(7.5, "0.5", power_kw="4"),
    )
    # Without POWER in the periods, the average power follows from energy and charging time.
    derived = price(t, MONDAY_0930, charge(10, "1"), charge(50, "40"), charge(7.5, "0.5"))
    assert given.total_cost == derived.total_cost == eur("20.30", "24.36")


def test_max_duration_restriction() -> None:
    t = tariff(
        element(comp("ENERGY", "0.00", "20"), max_duration=1800),
        element(comp("ENERGY", "0.25", "20"), max_duration=3600),
        element(comp("ENERGY", "0.40", "20")),
    )
    assert price(t, MONDAY_0930, charge(30, "5"), charge(10, "1.2")).total_cost == eur("0.30", "0.36")
    # After an hour the third element applies.
    late = price(t, MONDAY_0930, charge(30, "5"), charge(30, "1.2"), charge(10, "1"))
    assert late.total_cost == eur("0.70", "0.84")


RESERVATION_AND_CHARGING = (START_FEE, ENERGY_025)


def test_reservation_price() -> None:
    t = tariff(
        element(comp("TIME", "5.00", "20", step=60), reservation="RESERVATION"), *RESERVATION_AND_CHARGING
    )
    cost = price(t, MONDAY_0930, reserve(15), charge(120, "20"))
    assert cost.cost_of(CostKind.RESERVATION) == eur("1.25", "1.50")
    assert cost.total_cost == eur("6.75", "7.60")


def test_reservation_price_and_fee() -> None:
    t = tariff(
        element(comp("FLAT", "2.00", "20"), comp("TIME", "5.00", "20", step=300), reservation="RESERVATION"),
        *RESERVATION_AND_CHARGING,
    )
    cost = price(t, MONDAY_0930, reserve(13), charge(120, "20"))
    assert cost.cost_of(CostKind.RESERVATION) == eur("3.25", "3.90")  # 13 minutes billed as 15
    assert cost.total_cost == eur("8.75", "10.00")


EXPIRE_FEE = tariff(
    element(comp("FLAT", "4.00", "20"), reservation="RESERVATION_EXPIRES"),
    element(comp("TIME", "2.00", "20", step=600), reservation="RESERVATION"),
    *RESERVATION_AND_CHARGING,
)


def test_reservation_followed_by_charging_pays_no_expiry_fee() -> None:
    cost = price(EXPIRE_FEE, MONDAY_0930, reserve(22), charge(120, "20"))
    assert cost.total_cost == eur("6.50", "7.30")  # 22 minutes billed as 30


def test_expired_reservation_pays_time_and_expiry_fee() -> None:
    cost = price(EXPIRE_FEE, MONDAY_0930, reserve(60))
    assert cost.cost_of(CostKind.FIXED) == eur("0", "0")  # no start fee: no charging session
    assert cost.total_cost == eur("6.00", "7.20")


EXPIRE_TIME = tariff(
    element(comp("TIME", "3.00", "20", step=600), reservation="RESERVATION"),
    element(comp("TIME", "6.00", "20", step=600), reservation="RESERVATION_EXPIRES"),
    *RESERVATION_AND_CHARGING,
)


def test_reservation_time_rate_when_used() -> None:
    assert price(EXPIRE_TIME, MONDAY_0930, reserve(22), charge(120, "20")).total_cost == eur("7.00", "7.90")


def test_expired_reservation_uses_the_expires_time_rate_first() -> None:
    assert price(EXPIRE_TIME, MONDAY_0930, reserve(90)).total_cost == eur("9.00", "10.80")

"""Pricing rules beyond the spec's examples: dates, minimum power, FLAT once, unknown VAT, tariff validity."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from chargeflow.billing.pricing import CostKind

from .builders import charge, comp, element, eur, park, price, tariff

TUESDAY_2300 = datetime(2019, 6, 4, 23, 0, tzinfo=UTC)


def test_a_promotion_ends_on_its_end_date_at_local_midnight() -> None:
    t = tariff(
        element(comp("ENERGY", "0.10"), start_date="2019-06-01", end_date="2019-06-05"),
        element(comp("ENERGY", "0.30")),
    )
    # 23:00 to 01:00 UTC, split at midnight: the promotion holds on 4 June, not on 5 June (exclusive).
    cost = price(t, TUESDAY_2300, charge(60, "10"), charge(60, "10"))
    assert cost.total_cost.excl_vat == Decimal("1.00") + Decimal("3.00")
    # In Vienna (UTC+2 in June) the whole session is already on 5 June.
    assert (
        price(t, TUESDAY_2300, charge(60, "10"), charge(60, "10"), tz="Europe/Vienna").total_cost.excl_vat
        == 6
    )
    # Before its start date the promotion does not hold either.
    early = datetime(2019, 5, 31, 12, 0, tzinfo=UTC)
    assert price(t, early, charge(60, "10")).total_cost.excl_vat == 3


def test_minimum_power_for_fast_charging() -> None:
    t = tariff(element(comp("ENERGY", "0.59", "20"), min_power="50"), element(comp("ENERGY", "0.39", "20")))
    # 30 kWh in 18 minutes is 100 kW; the taper, 5 kWh in 15 minutes, is 20 kW.
    cost = price(t, TUESDAY_2300, charge(18, "30"), charge(15, "5"))
    assert cost.cost_of(CostKind.ENERGY) == eur("19.65", "23.58")
    assert [line.component.price for line in cost.lines] == [Decimal("0.59"), Decimal("0.39")]


def test_flat_fee_is_charged_once_even_over_many_periods() -> None:
    t = tariff(element(comp("FLAT", "1.00", "20"), comp("ENERGY", "0.20", "20")))
    cost = price(t, TUESDAY_2300, *(charge(10, "2") for _ in range(6)), park(30))
    assert cost.cost_of(CostKind.FIXED) == eur("1.00", "1.20")
    assert sum(1 for line in cost.lines if line.kind is CostKind.FIXED) == 1


def test_a_flat_fee_that_starts_to_apply_later_is_charged_once_then() -> None:
    t = tariff(
        element(comp("FLAT", "2.00"), start_time="00:00", end_time="06:00"), element(comp("ENERGY", "0.20"))
    )
    cost = price(t, TUESDAY_2300, charge(60, "5"), charge(60, "5"), charge(60, "5"))
    assert cost.cost_of(CostKind.FIXED).excl_vat == 2
    assert [line.period_index for line in cost.lines if line.kind is CostKind.FIXED] == [1]


def test_one_component_without_vat_makes_the_total_incl_vat_unknown() -> None:
    t = tariff(element(comp("FLAT", "1.00", "20"), comp("ENERGY", "0.20")))
    cost = price(t, TUESDAY_2300, charge(60, "10"))
    assert cost.cost_of(CostKind.FIXED) == eur("1.00", "1.20")
    assert cost.cost_of(CostKind.ENERGY) == eur("2.00", None)
    assert cost.total_cost == eur("3.00", None)


def test_zero_vat_is_not_unknown_vat() -> None:
    t = tariff(element(comp("ENERGY", "0.20", "0")))
    assert price(t, TUESDAY_2300, charge(60, "10")).total_cost == eur("2.00", "2.00")


def test_no_matching_element_means_free() -> None:
    t = tariff(element(comp("ENERGY", "0.20"), start_time="08:00", end_time="20:00"))
    cost = price(t, TUESDAY_2300, charge(60, "10"))
    assert cost.total_cost == eur("0", "0")
    assert cost.lines == ()


def test_a_tariff_outside_its_validity_is_priced_and_flagged() -> None:
    t = tariff(element(comp("ENERGY", "0.20")), end_date_time="2019-06-01T00:00:00Z")
    cost = price(t, TUESDAY_2300, charge(60, "10"))
    assert cost.total_cost.excl_vat == 2
    assert not cost.tariff_valid_at_start
    assert price(tariff(element(comp("ENERGY", "0.20"))), TUESDAY_2300, charge(60, "1")).tariff_valid_at_start

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargeflow.billing.cdr import FinishedSession, MeterSample, build_cdr
from chargeflow.billing.estimate import Expectation, estimate

from .builders import comp, element, eur, tariff

T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
TARIFF = tariff(
    element(comp("FLAT", "0.50", "20")),
    element(comp("ENERGY", "0.25", "10")),
    element(comp("PARKING_TIME", "2.00", "20", step=900)),
)


def at(m: int) -> datetime:
    return T0 + timedelta(minutes=m)


RUNNING = (MeterSample(at(0), 500), MeterSample(at(30), 5500), MeterSample(at(60), 11500))


def test_so_far_prices_what_is_metered() -> None:
    est = estimate(TARIFF, T0, RUNNING, UTC)
    assert est.so_far.total_cost == eur(
        "3.25", "3.625"
    )  # 11 kWh (2.75 + 10 % VAT) and the start fee (0.50 + 20 %)
    assert est.projected is None


def test_projection_matches_the_bill_when_the_session_goes_as_expected() -> None:
    expect = Expectation(further_energy_wh=9000, charged_by=at(120), departure=at(160))
    est = estimate(TARIFF, T0, RUNNING, UTC, expect)
    assert est.projected is not None
    assert est.projected.total_cost == eur("7.00", "7.90")
    finished = FinishedSession("s", "E1", "tok", T0, at(160), (*RUNNING, MeterSample(at(120), 20500)))
    assert build_cdr("c", finished, TARIFF, UTC).cost.total_cost == est.projected.total_cost


def test_a_session_without_samples_yet_costs_its_fixed_fee() -> None:
    assert estimate(TARIFF, T0, (), UTC).so_far.total_cost == eur("0.50", "0.60")


@pytest.mark.parametrize(
    "expect",
    [
        Expectation(1000, at(50), at(90)),  # before the last sample
        Expectation(1000, at(100), at(90)),  # charged after departure
        Expectation(1000, at(60), at(90)),  # energy without time
        Expectation(-1, at(70), at(90)),
    ],
)
def test_impossible_expectations_are_refused(expect: Expectation) -> None:
    with pytest.raises(ValueError, match=r"charged_by|negative"):
        estimate(TARIFF, T0, RUNNING, UTC, expect)

"""Invariants of the pricing engine over random tariffs and sessions (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from chargeflow.billing.pricing import CostKind

from .builders import charge, comp, element, park, price, tariff

START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

prices = st.decimals(min_value=0, max_value=5, places=4)
vats = st.decimals(min_value=0, max_value=30, places=1)
steps = st.sampled_from([1, 10, 100, 250, 500, 1000, 5000])
energies_wh = st.integers(min_value=0, max_value=80_000)


@given(prices, vats, steps, energies_wh, energies_wh)
def test_energy_price_is_monotone_in_energy(p: Decimal, vat: Decimal, step: int, a: int, b: int) -> None:
    t = tariff(element(comp("ENERGY", str(p), str(vat), step=step)))
    low, high = sorted((a, b))
    cost_low = price(t, START, charge(60, str(Decimal(low) / 1000))).total_cost
    cost_high = price(t, START, charge(60, str(Decimal(high) / 1000))).total_cost
    assert cost_low.excl_vat <= cost_high.excl_vat
    assert cost_low.incl_vat is not None
    assert cost_high.incl_vat is not None
    assert cost_low.incl_vat <= cost_high.incl_vat


@given(prices, vats, prices, vats, st.integers(1, 600), st.integers(0, 600))
def test_incl_vat_is_never_below_excl_vat(
    p1: Decimal, v1: Decimal, p2: Decimal, v2: Decimal, charging_min: int, parking_min: int
) -> None:
    t = tariff(
        element(
            comp("TIME", str(p1), str(v1), step=300),
            comp("PARKING_TIME", str(p2), str(v2), step=60),
            comp("FLAT", "1", "20"),
        )
    )
    segs = [charge(charging_min, "10")] + ([park(parking_min)] if parking_min else [])
    cost = price(t, START, *segs)
    for kind in CostKind:
        part = cost.cost_of(kind)
        assert part.incl_vat is not None
        assert part.incl_vat >= part.excl_vat >= 0


@given(prices, steps, energies_wh, st.integers(0, 100))
def test_splitting_a_period_does_not_change_the_price(
    p: Decimal, step: int, energy_wh: int, split_pct: int
) -> None:
    # step_size is applied once to the session total, so where periods are cut must not matter.
    t = tariff(element(comp("ENERGY", str(p), step=step)))
    first = Decimal(energy_wh * split_pct // 100)
    whole = price(t, START, charge(60, str(Decimal(energy_wh) / 1000)))
    split = price(t, START, charge(30, str(first / 1000)), charge(30, str((energy_wh - first) / 1000)))
    assert whole.total_cost == split.total_cost


@given(steps, energies_wh)
def test_billed_energy_is_the_smallest_step_multiple_covering_the_use(step: int, energy_wh: int) -> None:
    t = tariff(element(comp("ENERGY", "1", step=step)))
    cost = price(t, START, charge(60, str(Decimal(energy_wh) / 1000)))
    billed = sum(line.billed for line in cost.lines)
    assert billed % step == 0
    assert energy_wh <= billed < energy_wh + step or energy_wh == billed == 0


@given(
    prices,
    energies_wh,
    st.decimals(min_value=0, max_value=10, places=2),
    st.decimals(min_value=0, max_value=10, places=2),
)
def test_total_stays_within_min_and_max_price(p: Decimal, energy_wh: int, a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    t = tariff(
        element(comp("ENERGY", str(p), "10")),
        min_price={"excl_vat": str(low), "incl_vat": str(low * Decimal("1.1"))},
        max_price={"excl_vat": str(high), "incl_vat": str(high * Decimal("1.1"))},
    )
    total = price(t, START, charge(60, str(Decimal(energy_wh) / 1000))).total_cost
    assert low <= total.excl_vat <= high
    assert total.incl_vat is not None
    assert low * Decimal("1.1") <= total.incl_vat <= high * Decimal("1.1")

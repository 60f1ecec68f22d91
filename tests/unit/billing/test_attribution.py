"""Energy-source attribution: the site rule on hand-worked steps, and exact conservation on random ones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargeflow.billing.attribution import (
    BUILDING,
    EXPORT,
    LOSSES,
    MERIT_ORDER,
    AttributionError,
    Rule,
    Shares,
    SiteStep,
    Source,
    attribute_sessions,
    attribute_step,
    largest_remainder,
)

STEP = SiteStep(
    pv_wh=6000, battery_discharge_wh=1000, grid_import_wh=3000, building_wh=4000, ev_wh={"a": 4000, "b": 2000}
)


def table(shares: dict[str, Shares], *consumers: str) -> list[tuple[int, int, int]]:
    return [
        (shares[c].of(Source.PV), shares[c].of(Source.BATTERY), shares[c].of(Source.GRID)) for c in consumers
    ]


def test_building_first_then_evs_pro_rata() -> None:
    shares = attribute_step(STEP)
    # The building takes 4000 Wh of PV; the EVs share the remaining 2000 Wh PV, the battery's 1000 Wh and
    # 3000 Wh of grid, 2 : 1 as their energy, whole Wh by largest remainder.
    assert table(shares, BUILDING, "a", "b") == [(4000, 0, 0), (1333, 667, 2000), (667, 333, 1000)]


def test_pro_rata_all() -> None:
    shares = attribute_step(STEP, Rule.PRO_RATA)
    assert table(shares, BUILDING, "a", "b") == [(2400, 400, 1200), (2400, 400, 1200), (1200, 200, 600)]


def test_evs_first() -> None:
    shares = attribute_step(STEP, Rule.EVS_FIRST)
    assert table(shares, "a", "b", BUILDING) == [(4000, 0, 0), (2000, 0, 0), (0, 1000, 3000)]


def test_surplus_goes_to_export_then_losses() -> None:
    step = SiteStep(
        pv_wh=10_000,
        battery_discharge_wh=0,
        grid_import_wh=0,
        building_wh=2000,
        ev_wh={"a": 3000},
        export_wh=4000,
    )
    shares = attribute_step(step)
    assert shares[EXPORT].of(Source.PV) == 4000
    assert shares[LOSSES].of(Source.PV) == 1000
    assert shares["a"].of(Source.PV) == 3000


def test_unmetered_building_is_the_residual() -> None:
    step = SiteStep(pv_wh=1000, battery_discharge_wh=0, grid_import_wh=5000, ev_wh={"a": 4000})
    shares = attribute_step(step)
    assert table(shares, BUILDING, "a") == [(1000, 0, 1000), (0, 0, 4000)]
    assert shares[LOSSES].total_wh == 0


def test_consumers_beyond_the_sources_are_refused() -> None:
    with pytest.raises(AttributionError, match="only 5000 Wh"):
        attribute_step(
            SiteStep(
                pv_wh=0, battery_discharge_wh=0, grid_import_wh=5000, building_wh=2000, ev_wh={"a": 4000}
            )
        )
    with pytest.raises(AttributionError, match="negative"):
        attribute_step(SiteStep(pv_wh=-1, battery_discharge_wh=0, grid_import_wh=0, ev_wh={}))
    with pytest.raises(AttributionError, match="not a session id"):
        attribute_step(SiteStep(pv_wh=0, battery_discharge_wh=0, grid_import_wh=10, ev_wh={"building": 1}))


def test_session_totals_add_the_steps() -> None:
    night = SiteStep(
        pv_wh=0, battery_discharge_wh=2000, grid_import_wh=3000, building_wh=1000, ev_wh={"a": 4000}
    )
    totals, per_step = attribute_sessions([STEP, night])
    assert len(per_step) == 2
    assert (totals["a"].of(Source.PV), totals["a"].of(Source.BATTERY), totals["a"].of(Source.GRID)) == (
        1333,
        667 + 1000,
        2000 + 3000,
    )


wh = st.integers(0, 20_000)


@st.composite
def steps(draw: st.DrawFn) -> SiteStep:
    evs = draw(st.dictionaries(st.sampled_from(["s1", "s2", "s3", "s4", "s5"]), wh, max_size=5))
    building, charge, export = draw(wh), draw(wh), draw(wh)
    pv, battery = draw(wh), draw(wh)
    demand = sum(evs.values()) + building + charge + export
    grid = max(demand - pv - battery, 0) + draw(st.integers(0, 500))  # metering slack becomes losses
    metered_building = draw(st.booleans())
    return SiteStep(pv, battery, grid, evs, building if metered_building else None, charge, export)


@given(st.lists(steps(), min_size=1, max_size=20), st.sampled_from(list(Rule)))
def test_shares_conserve_every_source_and_every_consumer(site_steps: list[SiteStep], rule: Rule) -> None:
    _, per_step = attribute_sessions(site_steps, rule)
    for step, shares in zip(site_steps, per_step, strict=True):
        for source, metered in step.supply().items():
            assert sum(s.of(source) for s in shares.values()) == metered
        for session_id, metered in step.ev_wh.items():
            assert shares[session_id].total_wh == metered
        if step.building_wh is not None:
            assert shares[BUILDING].total_wh == step.building_wh
        assert all(s.of(src) >= 0 for s in shares.values() for src in MERIT_ORDER)


@given(steps())
def test_building_first_uses_the_grid_only_when_local_energy_is_short(step: SiteStep) -> None:
    shares = attribute_step(step, Rule.BUILDING_FIRST)
    local = step.pv_wh + step.battery_discharge_wh
    if local >= shares[BUILDING].total_wh:
        assert shares[BUILDING].of(Source.GRID) == 0


@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=12), st.data())
def test_largest_remainder_is_exact_and_fair(weights: list[int], data: st.DataObject) -> None:
    total = data.draw(st.integers(0, sum(weights)))
    parts = largest_remainder(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        assert 0 <= part <= weight
        if sum(weights):
            assert abs(part - total * weight / sum(weights)) < 1

"""The site LP (``ems.site_plan``) on small cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from chargeflow.ems.site_plan import EvNeeds, SiteForecast, SitePlan, SitePlanner, Storage


def one_ev(
    needed_wh: float, wished_wh: float, start: int, end: int, cap: float | None = None, max_w: float = 10_000
) -> EvNeeds:
    return EvNeeds(
        max_w=np.array([max_w]),
        needed_wh=np.array([needed_wh]),
        wished_wh=np.array([wished_wh]),
        start_slot=np.array([start], dtype=np.int64),
        end_slot=np.array([end], dtype=np.int64),
        wish_cap_per_wh=None if cap is None else np.array([cap]),
    )


def forecast(
    price: list[float],
    building: list[float] | None = None,
    pv: list[float] | None = None,
    feed_in: float = 0.0,
) -> SiteForecast:
    n = len(price)
    return SiteForecast(
        building_w=np.asarray(building or [0.0] * n),
        pv_w=np.asarray(pv or [0.0] * n),
        price_per_wh=np.asarray(price),
        feed_in_per_wh=np.full(n, feed_in),
    )


def test_the_cheap_slot_is_preferred() -> None:
    # 10 kWh wished, 10 kW, two one-hour slots at 0.30 and 0.10 per kWh: all of it in the second.
    plan = SitePlanner().solve(one_ev(0, 10_000, 0, 2), forecast([0.0003, 0.0001]), 1.0, 100_000, 0)
    assert plan.ok
    assert plan.ev_w[0].tolist() == pytest.approx([0.0, 10_000.0])
    assert plan.cost == pytest.approx(1.0)


def test_the_need_is_met_above_the_cap_and_the_wish_only_below_it() -> None:
    # Need 5 kWh, wish 10 kWh, cap 0.20 per kWh: at 0.30 only the need is bought, at 0.10 the wish too.
    dear = SitePlanner().solve(one_ev(5_000, 10_000, 0, 2, cap=0.0002), forecast([0.0003] * 2), 1.0, 1e5, 0)
    assert dear.ev_w.sum() == pytest.approx(5_000.0)
    assert dear.short_wh[0] == pytest.approx(0.0)
    cheap = SitePlanner().solve(one_ev(5_000, 10_000, 0, 2, cap=0.0002), forecast([0.0001] * 2), 1.0, 1e5, 0)
    assert cheap.ev_w.sum() == pytest.approx(10_000.0)


def test_a_need_that_cannot_be_met_is_short_only_by_what_does_not_fit() -> None:
    # 15 kWh needed in one hour at 10 kW: 5 kWh short, never more.
    plan = SitePlanner().solve(one_ev(15_000, 15_000, 0, 1), forecast([0.0003, 0.0003]), 1.0, 1e5, 0)
    assert plan.ok
    assert plan.ev_w[0].tolist() == pytest.approx([10_000.0, 0.0])
    assert plan.short_wh[0] == pytest.approx(5_000.0)


def sunny_day_with_an_evening_peak(ess: Storage, max_import_w: float) -> SitePlan:
    """Noon: 20 kW PV, 5 kW building, 0.40 per kWh; evening: no PV, 25 kW building, 0.30 per kWh; export
    earns 0.05 per kWh; no EV."""
    no_ev = EvNeeds(*(np.zeros(0),) * 3, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    day = forecast([0.0004, 0.0003], [5_000, 25_000], [20_000, 0], feed_in=0.00005)
    plan = SitePlanner().solve(no_ev, day, 1.0, max_import_w, 30_000, ess)
    assert plan.ok
    return plan


def test_the_ess_stores_the_pv_surplus_and_covers_the_evening_peak() -> None:
    # With 15 kW of import: exporting the 15 kW surplus earns 0.05 per kWh, storing it saves 0.30 in the
    # evening, and grid power at noon costs more than it would save: the battery (lossless here) takes
    # exactly the surplus and all 15 kWh cover the evening, so the import is 10 kW.
    ess = Storage(0, 0, 50_000, 20_000, 20_000, efficiency=1.0)
    plan = sunny_day_with_an_evening_peak(ess, 15_000)
    assert plan.ess_charge_w.tolist() == pytest.approx([15_000.0, 0.0])
    assert plan.ess_discharge_w.tolist() == pytest.approx([0.0, 15_000.0])
    assert plan.import_w.tolist() == pytest.approx([0.0, 10_000.0])
    assert plan.export_w.tolist() == pytest.approx([0.0, 0.0])
    assert plan.stored_wh.tolist() == pytest.approx([15_000.0, 0.0])


def test_ess_losses_and_bounds_are_kept() -> None:
    # The same day with a 90 % one-way efficiency, 10 kWh of capacity and 2 kWh that must stay in it.
    plan = sunny_day_with_an_evening_peak(Storage(2_000, 2_000, 10_000, 20_000, 20_000, 0.9), 20_000)
    assert plan.stored_wh.min() >= 2_000 - 1e-6
    assert plan.stored_wh.max() <= 10_000 + 1e-6
    # 8 kWh of room take 8 / 0.9 kWh of PV; they give back 8 · 0.9 kWh in the evening.
    assert plan.ess_charge_w[0] == pytest.approx(8_000 / 0.9)
    assert plan.ess_discharge_w[1] == pytest.approx(8_000 * 0.9)
    assert plan.import_w[1] == pytest.approx(25_000 - 7_200)


def test_the_peak_import_is_kept_down_when_it_has_a_price() -> None:
    # 20 kWh over four flat-priced hours, the building takes 10 kW in the first and last: with a price on
    # the peak the EV charges in the two middle hours and the peak stays the building's 10 kW.
    plan = SitePlanner(peak_price_per_w=0.01).solve(
        one_ev(20_000, 20_000, 0, 4), forecast([0.0002] * 4, [10_000, 0, 0, 10_000]), 1.0, 50_000, 0
    )
    assert plan.ok
    assert plan.ev_w[0].tolist() == pytest.approx([0.0, 10_000.0, 10_000.0, 0.0])
    assert plan.peak_import_w == pytest.approx(10_000.0)
    assert np.all(plan.import_w <= 50_000 + 1e-6)


def test_an_ev_is_never_planned_outside_its_stay() -> None:
    plan = SitePlanner().solve(
        one_ev(0, 30_000, 1, 3), forecast([0.0001, 0.0003, 0.0003, 0.0001]), 1.0, 1e5, 0
    )
    assert plan.ev_w[0, 0] == 0.0
    assert plan.ev_w[0, 3] == 0.0
    assert plan.ev_w[0].sum() == pytest.approx(20_000.0)

"""P_needed and P_wished from preferences, on hand-worked examples (230 V, 60 s steps)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chargeflow.csm.demand import EvSession, Preferences, WishReason, demand_table

NOW = datetime(2026, 1, 1, 8, tzinfo=UTC)


def session(
    needed_wh: int = 8_000,
    wished_wh: int = 30_000,
    minutes: float = 240,
    charged_wh: int = 0,
    phases: int = 3,
    ev_max: float | None = 16.0,
    station_max: float = 32.0,
    cap_a: str | None = None,
    cap_b: str | None = None,
) -> EvSession:
    return EvSession(
        id="cp1",
        circuit="garage",
        phases=phases,
        l1_phase=1,
        min_current_a=6.0,
        station_max_current_a=station_max,
        preferences=Preferences(
            needed_wh,
            wished_wh,
            NOW + timedelta(minutes=minutes),
            Decimal(cap_a) if cap_a else None,
            Decimal(cap_b) if cap_b else None,
        ),
        charged_wh=charged_wh,
        ev_max_current_a=ev_max,
    )


def one(s: EvSession, price: str | None = None) -> tuple[float, float, WishReason]:
    t = demand_table([s], NOW, 60, 230, Decimal(price) if price else None)
    return float(t.need_a[0]), float(t.wish_a[0]), t.reason(0)


def test_plenty_of_time_needs_nothing_and_wishes_the_ev_maximum() -> None:
    # 16 A × 3 × 230 V = 11.04 kW for 4 h is far more than 8 kWh.
    assert one(session()) == (0.0, 16.0, WishReason.EV_MAX)


def test_no_time_to_spare_needs_the_full_rate() -> None:
    # 30 min: after this step 29 min at 11.04 kW give 5.336 kWh < 8 kWh, so full power is needed now.
    assert one(session(minutes=30))[0] == 16.0


def test_need_is_the_least_power_that_keeps_the_deadline() -> None:
    # 33 min: the 32 min after this step give 11.04 kW × 32/60 h = 5888 Wh; 112 Wh are left for this
    # minute: 6720 W = 9.739 A per phase, rounded up to the 0.1 A step.
    assert one(session(needed_wh=6_000, minutes=33))[0] == pytest.approx(9.8)


def test_small_need_is_raised_to_the_minimum_current() -> None:
    # 10 Wh short: 600 W = 0.87 A, but AC charging cannot run below 6 A.
    assert one(session(needed_wh=5_898, minutes=33))[0] == 6.0


def test_overdue_departure_needs_the_full_rate_for_the_rest() -> None:
    assert one(session(minutes=-10))[0] == 16.0


def test_price_cap_beyond_the_need_stops_the_wish() -> None:
    # ΔE_min reached; the extra energy is capped at 0.25 per kWh and the price is 0.30.
    assert one(session(charged_wh=8_000, cap_a="0.40", cap_b="0.25"), price="0.30") == (
        0.0,
        0.0,
        WishReason.PRICE_CAP,
    )
    assert one(session(charged_wh=8_000, cap_a="0.40", cap_b="0.25"), price="0.20")[1] == 16.0


def test_price_cap_on_needed_energy_leaves_only_the_need() -> None:
    # Price above C_max(a): nothing is wished beyond what the deadline forces (here the full rate).
    assert one(session(minutes=30, cap_a="0.20", cap_b="0.10"), price="0.30") == (
        16.0,
        16.0,
        WishReason.EV_MAX,
    )
    assert one(session(cap_a="0.20", cap_b="0.10"), price="0.30") == (0.0, 0.0, WishReason.PRICE_CAP)


def test_energy_reached_and_the_last_small_rest() -> None:
    assert one(session(charged_wh=30_000)) == (0.0, 0.0, WishReason.ENERGY_REACHED)
    # 50 Wh to go in a 60 s step: 3 kW = 4.35 A, raised to 6 A.
    assert one(session(charged_wh=29_950)) == (0.0, 6.0, WishReason.ENERGY_REACHED)


def test_ev_below_the_station_minimum_cannot_charge() -> None:
    assert one(session(minutes=30, ev_max=5.0)) == (0.0, 0.0, WishReason.EV_BELOW_MIN)


def test_station_maximum_when_nothing_is_learned() -> None:
    assert one(session(ev_max=None, phases=1)) == (0.0, 32.0, WishReason.STATION_MAX)


def test_site_totals_are_sums_in_watts() -> None:
    t = demand_table([session(minutes=30), session(minutes=33, needed_wh=6_000, phases=1)], NOW, 60, 230)
    assert t.needed_w == pytest.approx(16.0 * 690 + float(t.need_a[1]) * 230)
    assert t.wished_w == pytest.approx(16.0 * 690 + 16.0 * 230)


def test_preferences_are_checked() -> None:
    with pytest.raises(ValueError, match="needed_wh"):
        Preferences(10, 5, NOW)
    with pytest.raises(ValueError, match="timezone"):
        Preferences(0, 5, datetime(2026, 1, 1))  # noqa: DTZ001 - the naive time is the point of the test

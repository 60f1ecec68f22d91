"""Expected arrivals from the site's history (``ems.forecast``)."""

from __future__ import annotations

from chargeflow.ems.forecast import ArrivalHistory, Seen

DAY = 288  # 5-minute slots


def test_a_working_day_expects_the_average_of_the_last_working_days() -> None:
    # Slot 0 is a Monday. Monday and Tuesday each saw one EV at station 3 at 08:00 (slot 96).
    h = ArrivalHistory(DAY, first_weekday=0)
    assert h.record("mon", Seen(3, 96, 100, 300.0, 32.0))
    assert h.record("tue", Seen(3, DAY + 96, 100, 100.0, 32.0))
    assert not h.record("tue", Seen(3, DAY + 96, 100, 999.0, 32.0))  # seen again: recorded once
    now = 2 * DAY + 60  # Wednesday 05:00
    expected = h.expected(now, DAY)
    assert sorted(expected) == [(3, 50.0, 36, 136, 16.0), (3, 150.0, 36, 136, 16.0)]


def test_weekends_and_working_days_do_not_mix() -> None:
    h = ArrivalHistory(DAY, first_weekday=4)  # slot 0 is a Friday
    h.record("fri", Seen(1, 100, 50, 200.0, 32.0))
    saturday_night = DAY + 10
    assert h.expected(saturday_night, DAY // 2) == []  # Saturday has no weekend history yet
    monday = 3 * DAY
    assert [e[0] for e in h.expected(monday, DAY)] == [1]


def test_nothing_is_expected_before_now_or_beyond_the_horizon() -> None:
    h = ArrivalHistory(DAY, first_weekday=0)
    h.record("a", Seen(0, 50, 10, 10.0, 32.0))
    assert h.expected(DAY + 60, 100) == []  # the arrival at 50 is before now's time of day
    assert h.expected(DAY + 10, 30) == []  # and beyond a 30-slot horizon from 10
    assert len(h.expected(DAY + 10, 50)) == 1


def test_forecast_error_is_mean_absolute_error_and_bias() -> None:
    from chargeflow.ems.forecast import forecast_error

    err = forecast_error([3.0, 0.0, 5.0], [1.0, 2.0, 5.0])
    assert err.mae == 4.0 / 3
    assert err.bias == 0.0
    assert err.mean_actual == 8.0 / 3
    assert forecast_error([2.0, 2.0], [1.0, 1.0]).bias == 1.0
    assert forecast_error([], []).n == 0

"""The site plan's forecasts (``ems.site_forecast``) on cases checked by hand."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from chargeflow.ems.site_forecast import (
    BuildingForecaster,
    ForecastScore,
    PvForecaster,
    clear_sky_shape,
    cos_zenith,
)

VIENNA = (48.2, 16.37)
SOLSTICE = datetime(2019, 6, 21, tzinfo=UTC)


def at(*times: datetime) -> np.ndarray:
    return np.array([t.timestamp() for t in times])


def test_the_sun_is_down_at_night_and_as_high_as_geometry_says_at_noon() -> None:
    # Midnight UTC is 02:00 in Vienna: no sun. At the June solstice the noon sun stands 90° − 48.2° + 23.44°
    # above the horizon; in December 23.44° lower on the other side.
    assert clear_sky_shape(*VIENNA, at(SOLSTICE))[0] == 0.0
    noon = [SOLSTICE + timedelta(minutes=m) for m in range(9 * 60, 13 * 60)]
    elevation = np.degrees(np.arcsin(cos_zenith(*VIENNA, at(*noon)))).max()
    assert elevation == pytest.approx(90 - 48.2 + 23.44, abs=0.2)
    december = [datetime(2019, 12, 21, tzinfo=UTC) + timedelta(minutes=m) for m in range(9 * 60, 13 * 60)]
    assert np.degrees(np.arcsin(cos_zenith(*VIENNA, at(*december)))).max() == pytest.approx(
        90 - 48.2 - 23.44, abs=0.2
    )


def test_solar_noon_moves_with_longitude() -> None:
    # 15° further west, the sun culminates an hour later.
    day = [SOLSTICE + timedelta(minutes=m) for m in range(24 * 60)]
    east = int(np.argmax(cos_zenith(48.2, 16.37, at(*day))))
    west = int(np.argmax(cos_zenith(48.2, 1.37, at(*day))))
    assert west - east == pytest.approx(60, abs=1)


def test_the_pv_forecast_follows_the_measured_share_of_the_clear_sky() -> None:
    pv = PvForecaster(*VIENNA, peak_w=10_000)
    morning = [SOLSTICE + timedelta(hours=7, minutes=m) for m in range(60)]
    for t in morning:  # a hazy hour: the array gives half of what a clear sky would
        pv.observe(t, 0.5 * 10_000 * clear_sky_shape(*VIENNA, at(t))[0])
    assert pv.ratio == pytest.approx(0.5)
    noon = SOLSTICE + timedelta(hours=11)
    assert pv.forecast(at(noon))[0] == pytest.approx(0.5 * 10_000 * clear_sky_shape(*VIENNA, at(noon))[0])
    night = SOLSTICE + timedelta(hours=22)
    pv.observe(night, 0.0)  # readings at night say nothing: the ratio stays for the next morning
    assert pv.ratio == pytest.approx(0.5)
    assert pv.forecast(at(night))[0] == 0.0


def test_the_pv_ratio_is_clamped_and_forgets_beyond_its_window() -> None:
    pv = PvForecaster(*VIENNA, peak_w=10_000, window_s=3600, max_ratio=1.2)
    start = SOLSTICE + timedelta(hours=8)
    for m in range(60):  # three times the clear sky (a wrong peak in the site file): held at 1.2
        pv.observe(start + timedelta(minutes=m), 30_000)
    assert pv.ratio == 1.2
    for m in range(60, 150):  # an overcast hour and a half: only it counts now
        t = start + timedelta(minutes=m)
        pv.observe(t, 0.2 * pv.peak_w * clear_sky_shape(*VIENNA, at(t))[0])
    assert pv.ratio == pytest.approx(0.2)


def test_building_load_is_the_mean_of_the_same_slot_on_the_last_days_of_its_kind() -> None:
    f = BuildingForecaster("UTC", slot_s=3600, days=2)
    monday = datetime(2026, 3, 2, tzinfo=UTC)
    for day, kw in enumerate([10, 20, 30, 40, 50, 5, 6]):  # Monday to Sunday, 09:00–10:00
        f.observe(monday + timedelta(days=day, hours=9), kw * 1000)
        f.observe(monday + timedelta(days=day, hours=9, minutes=30), kw * 1000 + 2000)
    next_monday = monday + timedelta(days=7, hours=9, minutes=30)
    # The last two working days (Thursday 41 kW, Friday 51 kW, each the mean of its two readings).
    assert f.forecast(at(next_monday))[0] == pytest.approx(46_000)
    # Saturday is its own kind: one Saturday, 6 kW on average.
    assert f.forecast(at(monday + timedelta(days=12, hours=9)))[0] == pytest.approx(6_000)


def test_a_holiday_is_a_sunday_and_no_history_is_persistence() -> None:
    f = BuildingForecaster("UTC", slot_s=3600, days=3, holidays=frozenset({date(2026, 3, 4)}))
    monday = datetime(2026, 3, 2, tzinfo=UTC)
    f.observe(monday + timedelta(hours=12), 8_000)
    # Wednesday the 4th is a holiday: no Sunday or holiday seen yet, so the last reading stands.
    assert f.forecast(at(monday + timedelta(days=2, hours=12)))[0] == 8_000
    f.observe(monday + timedelta(days=2, hours=12), 3_000)  # the holiday itself
    # The next Sunday takes the holiday's load, the Thursday Monday's.
    assert f.forecast(at(monday + timedelta(days=6, hours=12)))[0] == 3_000
    assert f.forecast(at(monday + timedelta(days=3, hours=12)))[0] == 8_000
    assert f.forecast(at(monday + timedelta(days=3, hours=13)))[0] == 3_000  # that slot was never seen


def test_the_building_forecast_reads_local_time() -> None:
    f = BuildingForecaster("Europe/Vienna", slot_s=3600)
    # 07:00 UTC on a March Monday is 08:00 in Vienna; the Tuesday 07:30 UTC falls in the same local slot.
    f.observe(datetime(2026, 3, 2, 7, 0, tzinfo=UTC), 12_000)
    f.observe(datetime(2026, 3, 2, 8, 0, tzinfo=UTC), 99_000)
    assert f.forecast(at(datetime(2026, 3, 3, 7, 30, tzinfo=UTC)))[0] == 12_000


def test_a_forecast_is_scored_against_the_mean_of_its_slot() -> None:
    score = ForecastScore(slot_s=900)
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    slot = math.floor(t0.timestamp() / 900)
    score.predict(slot, 10.0)
    score.predict(slot + 1, 4.0)
    for m, value in enumerate([8.0] * 15 + [6.0] * 15 + [1.0]):
        score.measure(t0 + timedelta(minutes=m), value)
    e = score.error()  # slot: 10 against 8, next: 4 against 6; the third slot is still open
    assert e.n == 2
    assert e.mae == pytest.approx(2.0)
    assert e.bias == pytest.approx(0.0)
    assert e.mean_actual == pytest.approx(7.0)

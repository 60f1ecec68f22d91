"""The dashboard's chart ranges (days begin at the site's midnight) and the limit reason a step's flow
sample keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chargeflow.csm.smart_charging import ChargingStep, StationLimit
from chargeflow.web.live import FlowSample, step_reason
from chargeflow.web.plot import _with_gaps, plot_range

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)  # 12:00 in Vienna (CEST, UTC+2)
VIENNA = "Europe/Vienna"


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("hours", NOW - timedelta(hours=3), NOW),
        ("today", datetime(2026, 4, 30, 22, 0, tzinfo=UTC), NOW),  # midnight in Vienna
        ("yesterday", datetime(2026, 4, 29, 22, 0, tzinfo=UTC), datetime(2026, 4, 30, 22, 0, tzinfo=UTC)),
        ("7d", NOW - timedelta(days=7), NOW),
    ],
)
def test_a_range_is_read_at_the_sites_time(name: str, start: datetime, end: datetime) -> None:
    chart = plot_range(name, NOW, VIENNA)
    assert (chart.name, chart.start, chart.end) == (name, start, end)


def test_today_begins_at_the_local_midnight_even_when_utc_is_still_on_the_day_before() -> None:
    late = datetime(2026, 4, 30, 22, 30, tzinfo=UTC)  # already 00:30 on 1 May in Vienna
    assert plot_range("today", late, VIENNA).start == datetime(2026, 4, 30, 22, 0, tzinfo=UTC)
    assert plot_range("today", late, "UTC").start == datetime(2026, 4, 30, 0, 0, tzinfo=UTC)


def test_yesterday_has_23_hours_on_the_day_the_clocks_go_forward() -> None:
    chart = plot_range("yesterday", datetime(2026, 3, 30, 10, 0, tzinfo=UTC), VIENNA)  # 29 March: CET -> CEST
    assert chart.start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert chart.end - chart.start == timedelta(hours=23)


def test_an_unknown_range_is_refused_with_the_ones_there_are() -> None:
    with pytest.raises(ValueError, match="hours, today, yesterday, 7d"):
        plot_range("month", NOW, VIENNA)


def _limit(reason: str) -> StationLimit:
    return StationLimit("cp", 1, 1, 16.0, reason, False, None)


def _step(fallback: str | None, *reasons: str) -> ChargingStep:
    return ChargingStep(NOW, 0.0, 0.0, None, fallback, tuple(_limit(r) for r in reasons))


def test_a_sample_keeps_the_fallback_else_the_most_frequent_limit_reason() -> None:
    assert step_reason(None) is None
    assert step_reason(_step(None)) is None  # nobody charging: no limit in force
    assert step_reason(_step(None, "ev_max", "fuse:main:L1", "fuse:main:L1")) == "fuse:main:L1"
    assert step_reason(_step(None, "ev_max", "grid_import_limit")) == "ev_max"  # a tie: the first
    assert step_reason(_step("fallback_stale_meter", "ev_max")) == "fallback_stale_meter"


def test_a_pause_in_the_samples_breaks_the_chart_s_lines() -> None:
    steps = [NOW + timedelta(seconds=10 * i) for i in (0, 1, 2, 3, 400, 401)]  # an hour's pause
    samples = [FlowSample(at, 1, 1, 0, 0, 0, None) for at in steps]
    times, rows = _with_gaps(samples)
    assert rows == [*samples[:4], None, *samples[4:]]
    assert times[3] < times[4] < times[5]
    assert _with_gaps(samples[:4])[1] == samples[:4]  # evenly spaced: no break

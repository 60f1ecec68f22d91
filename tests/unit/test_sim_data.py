"""Loaders of the shared data and the profiles' lookup."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from chargeflow.sim.data import (
    DataError,
    Profile,
    load_building_profile,
    load_prices,
    load_pv_profile,
    load_sessions,
    synthetic_building_profile,
    synthetic_pv_profile,
)

DATA = Path(__file__).parents[3] / "shared" / "data"
SHARED_FILES = (
    "acn/caltech_2019-05_2019-08.csv.gz",
    "profiles/office_medium_los_angeles_hourly.csv",
    "profiles/pv_jpl_220kwdc_30min.csv",
    "prices/nl_day_ahead_2022-01_2023-09_hourly.csv",
)
MISSING = [name for name in SHARED_FILES if not (DATA / name).is_file()]
needs_data = pytest.mark.skipif(
    bool(MISSING), reason=f"the shared data (../shared/data) is not here: missing {', '.join(MISSING)}"
)


def test_profile_interpolates_and_wraps_around_the_year() -> None:
    p = Profile((0.0, 1.0, 0.5), 3600)
    assert p.at(datetime(2026, 1, 1, 0, 30, tzinfo=UTC)) == pytest.approx(0.5)
    assert p.at(datetime(2026, 1, 1, 2, 30, tzinfo=UTC)) == pytest.approx(0.25)  # 2:00 → 0.5, 3:00 → 0.0


def test_weekday_aligned_profile_takes_a_day_of_the_same_weekday() -> None:
    # A two-week profile starting on a Sunday: Sundays 0, Mondays 1 … as the day's value.
    values = tuple(float((d + 6) % 7 + 1) for d in range(14) for _ in range(24))
    p = Profile(values, 3600, first_weekday=6)
    monday = datetime(2026, 1, 5, 12, tzinfo=UTC)  # day 4 of 2026, a Monday
    assert p.at(monday) == pytest.approx(1.0)
    assert p.at(datetime(2026, 1, 4, 12, tzinfo=UTC)) == pytest.approx(7.0)  # a Sunday


def test_generated_profiles_have_working_days_and_daylight() -> None:
    office = synthetic_building_profile("Europe/Vienna")
    assert office.at(datetime(2026, 3, 2, 10, tzinfo=UTC)) == 1.0  # Monday 11:00 in Vienna
    assert office.at(datetime(2026, 3, 1, 10, tzinfo=UTC)) == pytest.approx(0.3)  # Sunday
    pv = synthetic_pv_profile("UTC")
    assert pv.at(datetime(2026, 6, 21, 12, tzinfo=UTC)) > 0.9
    assert pv.at(datetime(2026, 6, 21, 2, tzinfo=UTC)) == 0.0


@needs_data
def test_shared_sessions_profiles_and_prices_load() -> None:
    sessions = load_sessions(DATA / "acn" / "caltech_2019-05_2019-08.csv.gz")
    assert len(sessions) == 3527
    assert all(s.arrival < s.departure for s in sessions)
    assert sessions[0].arrival == datetime(2019, 5, 1, 8, 18, 45, tzinfo=UTC)  # 01:18:45-07:00
    assert sessions[0].requested_wh == 60_000
    building = load_building_profile(
        DATA / "profiles" / "office_medium_los_angeles_hourly.csv", "America/Los_Angeles"
    )
    assert building.at(datetime(2019, 5, 6, 19, tzinfo=UTC)) > 3 * building.at(
        datetime(2019, 5, 5, 19, tzinfo=UTC)
    )
    pv = load_pv_profile(DATA / "profiles" / "pv_jpl_220kwdc_30min.csv", "America/Los_Angeles")
    assert pv.at(datetime(2019, 6, 21, 20, tzinfo=UTC)) > 0.5  # 13:00 local
    assert pv.at(datetime(2019, 6, 21, 10, tzinfo=UTC)) == 0.0  # 03:00 local
    prices = load_prices(DATA / "prices" / "nl_day_ahead_2022-01_2023-09_hourly.csv")
    assert str(prices.at(datetime(2019, 1, 1, 0, tzinfo=UTC))) == "0.1247"


def test_unusable_files_say_where(tmp_path: Path) -> None:
    bad = tmp_path / "s.csv"
    bad.write_text("arrival,departure\nsoon,later\n")
    with pytest.raises(DataError, match="line 2"):
        load_sessions(bad)
    with pytest.raises(DataError, match="cannot read"):
        load_sessions(tmp_path / "missing.csv")

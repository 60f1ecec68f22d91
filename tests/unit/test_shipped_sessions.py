"""The one real ACN day shipped in the package, and the demo's fall-back to it without the shared data."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from chargeflow.commands.demo import ACN_TZ, SESSIONS_FILE, SHIPPED_DAY, demo_sessions, shipped_sessions
from chargeflow.commands.simulate import default_site

DATA = Path(__file__).parents[3] / "shared" / "data"
DAY = date(2024, 6, 4)  # a fixed Tuesday, never the wall clock's


def test_the_shipped_day_loads_as_real_sessions_of_one_local_day() -> None:
    sessions = shipped_sessions()
    assert len(sessions) == 34
    assert {s.arrival.astimezone(ZoneInfo(ACN_TZ)).date() for s in sessions} == {SHIPPED_DAY}
    assert all(s.requested_wh > 0 and s.delivered_wh > 0 for s in sessions)
    assert all(s.departure > s.arrival for s in sessions)
    assert all(s.station_id.startswith("CA-") for s in sessions)


def test_the_demo_falls_back_to_the_shipped_day_without_the_shared_folder(tmp_path: Path) -> None:
    site = default_site()
    sessions, source = demo_sessions(tmp_path / "no-shared-data", site, DAY)
    assert "shipped" in source
    assert len(sessions) == 34
    assert {s.arrival.astimezone(ZoneInfo(site.timezone)).date() for s in sessions} == {DAY}
    assert [s.id for s in sessions] == [s.id for s in shipped_sessions()]
    assert demo_sessions(None, site, DAY)[0] == sessions


def test_the_shipped_day_is_the_demo_s_day_of_the_shared_file() -> None:
    if not (DATA / SESSIONS_FILE).is_file():
        pytest.skip(f"the shared ACN sessions are not here: {SESSIONS_FILE} (../shared/data)")
    site = default_site()
    shared, source = demo_sessions(DATA, site, DAY)
    assert "shipped" not in source
    assert shared == demo_sessions(None, site, DAY)[0]

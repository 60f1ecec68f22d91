"""``chargeflow serve --site`` as its own process runs the site: six stations of the ``ocpp`` library (1.6
and 2.0.1) whose EVs draw what their profiles allow hold their safe limit before their first transaction,
and after the first control step the site's import stays within its grid limit; a station that rejects
TxProfile gets its session's limit as its TxDefault."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from chargeflow.bench.ocpp_load import serve_process
from chargeflow.sim.drawing import VOLTAGE_V, DrawingStation, Ev, connected
from tests.waiting import until

GRID_W = 40_000.0
BUILDING_W = 5_000.0  # the building's declared peak: with no meter named, the site counts it as drawn

SITE = f"""
id: e2e
timezone: Europe/Vienna
voltage_v: 230
grid: {{max_import_w: {GRID_W:.0f}, max_export_w: 10000}}
circuits:
  - {{id: main, parent: null, max_current_a: 63}}
  - {{id: garage, parent: main, max_current_a: 40}}
  - {{id: yard, parent: main, max_current_a: 32}}
charging_points:
  - {{id: cp1, circuit: garage, max_current_a: 16}}
  - {{id: cp2, circuit: garage, max_current_a: 16}}
  - {{id: cp3, circuit: garage, max_current_a: 16}}
  - {{id: cp4, circuit: garage, max_current_a: 16}}
  - {{id: cp5, circuit: yard, max_current_a: 16}}
  - {{id: cp6, circuit: yard, max_current_a: 16}}
building: {{circuit: main, peak_w: {BUILDING_W:.0f}}}
"""
VERSIONS = {"cp1": "1.6", "cp2": "2.0.1", "cp3": "1.6", "cp4": "2.0.1", "cp5": "1.6", "cp6": "2.0.1"}
# Each station's safe share by hand, with the controller's 3 % margin: the grid's 38.8 kW less the
# building's 5 kW over 6 × 3 phases at 230 V is 8.16 A; the garage's 38.8 A over 4 stations 9.7 A, the
# yard's 31.04 A over 2 15.5 A, the main fuse's 61.11 A less the building's 7.25 A over 6 8.98 A: the grid's
# share binds, 8.1 A (rounded down).
SAFE_A = 8.1


def _total_w(stations: list[DrawingStation], ev: Ev) -> float:
    return sum(s.state.drawn_a * ev.phases * VOLTAGE_V for s in stations)


def _has_session_limit(s: DrawingStation) -> bool:
    """A TxProfile for its session, or (a station that rejects them) a TxDefault after the safe one."""
    if s.state.reject_tx_profiles:
        return sum(p.purpose == "TxDefaultProfile" for p in s.state.profiles) >= 2
    return any(p.purpose == "TxProfile" and p.transaction == s.state.transaction for p in s.state.profiles)


async def test_serve_site_keeps_the_grid_limit_and_safe_profiles(tmp_path: Path) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(SITE)
    url = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    ev = Ev(max_a=16.0)
    async with (
        serve_process(url, "e2e-token-0123456789abcdef", "--site", str(site_file), "--step", "2") as server,
        contextlib.AsyncExitStack() as stack,
    ):
        stations = [
            await stack.enter_async_context(connected(server.ocpp_port, sid, version))
            for sid, version in VERSIONS.items()
        ]
        # every station gets its safe limit as its TxDefault, before any transaction
        await until(lambda: all(s.state.profiles for s in stations), 10)
        for s in stations:
            first = s.state.profiles[0]
            assert first.purpose == "TxDefaultProfile", s.id
            assert first.limit_a == pytest.approx(SAFE_A, abs=0.05), s.id
        stations[-1].state.reject_tx_profiles = True  # it gets its session's limit as its TxDefault
        for i, s in enumerate(stations):
            await s.start_session(f"tag{i}")
        started = time.monotonic()
        over = []
        totals = []
        stepped = False
        while time.monotonic() - started < 16:
            await asyncio.gather(*(s.report(ev, 1.0) for s in stations))
            if not stepped:  # the first control step after the starts has sent every session its limit
                stepped = all(_has_session_limit(s) for s in stations)
            else:
                total = _total_w(stations, ev) + BUILDING_W
                totals.append(total)
                if total > GRID_W:
                    over.append(total)
            await asyncio.sleep(1.0)
        assert stepped, "not every station got its session's limit"
        rejecting = stations[-1].state
        assert all(p.purpose == "TxDefaultProfile" for p in rejecting.profiles)
        assert rejecting.profiles[-1].limit_a != pytest.approx(SAFE_A, abs=0.05)
        assert len(totals) >= 8
        assert not over, f"grid import above {GRID_W} W: {over}"
        # the grant is used: the site runs close to its limit (less the controller's 3 % margin)
        assert max(totals) > 0.95 * GRID_W

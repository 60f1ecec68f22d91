"""Billing on the running demo site: every control step's PV, battery and grid energy attributed to the
sessions and the building, conserved step by step, added up per session, and equal to each CDR's energy."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from chargeflow.billing.attribution import BUILDING, MERIT_ORDER, Shares, SiteStep, Source
from chargeflow.commands.demo import default_billing
from chargeflow.commands.simulate import default_site
from chargeflow.runtime.app import open_stores
from chargeflow.runtime.demo import Endpoints, LiveConfig, LiveState, run_live
from chargeflow.sim.data import SessionRecord, synthetic_building_profile, synthetic_pv_profile
from tests.e2e.test_smart_charging_loop import _until


def _sessions(day: date, zone: ZoneInfo) -> list[SessionRecord]:
    """Six EVs around noon, on a sunny day: short stays so that most sessions end within the run."""
    out = []
    for i in range(6):
        arrival = datetime.combine(day, time(11, 0), zone) + timedelta(minutes=7 * i)
        stay = timedelta(minutes=35 + 10 * i)
        out.append(SessionRecord(f"s{i}", "", arrival, arrival + stay, arrival + stay, 8000, 8000))
    return out


async def test_energy_sources_are_conserved_per_step_and_add_up_to_each_cdr(tmp_path: Path) -> None:
    site = default_site()
    zone = ZoneInfo(site.timezone)
    day = date(2026, 6, 16)  # a Tuesday in June: PV, the office at work, the weekday tariff
    config = LiveConfig(
        site=site,
        sessions=_sessions(day, zone),
        building=synthetic_building_profile(site.timezone),
        pv=synthetic_pv_profile(site.timezone),
        start=datetime.combine(day, time(10, 55), zone),
        duration=timedelta(hours=1, minutes=45),
        speed=0.0,
        ocpp_port=0,
        http_port=0,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'live.db'}",
        admin_token="t",
        billing=default_billing(),
    )
    steps: list[tuple[SiteStep, dict[str, Shares], float]] = []
    endpoints: list[Endpoints] = []
    api: list[dict[str, Any]] = []

    def on_step(state: LiveState) -> None:
        if state.sources is not None:
            steps.append((*state.sources, state.truth.ev_w * config.step_s / 3600))

    async def ask_api() -> None:
        await _until(lambda: len(steps) >= 600, timeout_s=200)  # 100 minutes in: sessions have ended
        async with httpx.AsyncClient(base_url=endpoints[0].http_url, timeout=10) as client:
            answer = await client.get(
                "/api/reports",
                params={"period": "day", "group": "none"},
                headers={"Authorization": "Bearer t"},
            )
            api.append(answer.json())

    async with asyncio.timeout(240):
        demo = asyncio.create_task(run_live(config, endpoints.append, on_step))
        await ask_api()
        await demo

    totals: dict[str, Shares] = {}
    for step, shares, _ in steps:
        supply = step.supply()
        for source in MERIT_ORDER:  # every Wh of every source goes to exactly one consumer
            assert sum(s.of(source) for s in shares.values()) == supply[source]
        for session, wh in step.ev_wh.items():  # and every session gets exactly its metered energy
            assert shares[session].total_wh == wh
            totals[session] = totals.get(session, Shares()) + shares[session]
        building = shares[BUILDING]
        assert building.of(Source.PV) == min(step.pv_wh, building.total_wh)  # the site rule: building first
        if step.ev_wh and building.total_wh < step.pv_wh:  # PV beyond the building goes to the EVs
            assert sum(shares[s].of(Source.PV) for s in step.ev_wh) == min(
                step.pv_wh - building.total_wh, sum(step.ev_wh.values())
            )
    ev_registers = sum(sum(step.ev_wh.values()) for step, _, _ in steps)
    ev_site = sum(ev for _, _, ev in steps)
    assert ev_registers > 20_000  # the EVs really charged
    assert abs(ev_registers - ev_site) <= 0.02 * ev_site  # the stations' registers agree with the site

    async with open_stores(config.database_url) as stores:
        stored = await stores.billing.shares()
        cdrs = await stores.billing.list_cdrs()
        ended = await stores.repository.list_transactions(active=False)
    assert stored == {k: v for k, v in totals.items() if v.total_wh or k in stored}
    assert len(cdrs) == len(ended) >= 3
    for cdr in cdrs:  # the live steps saw every Wh each CDR bills, no more, no less
        assert stored[cdr.session_id].total_wh == cdr.energy_wh
        assert cdr.cost.excl_vat > 0
        assert cdr.tariff_id == "workplace"
    (row,) = api[0]["rows"]
    assert row["pv_wh"] + row["battery_wh"] + row["grid_wh"] + row["unattributed_wh"] == row["energy_wh"]

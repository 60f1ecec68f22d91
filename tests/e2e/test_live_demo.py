"""The demo site as a whole: the CSM, the EMS and a simulated workplace over real OCPP and HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx

from chargeflow.commands.demo import live_config
from chargeflow.runtime.demo import Endpoints, LiveState, run_live
from tests.e2e.test_smart_charging_loop import _until

ROOT = Path(__file__).parents[2]


async def test_the_demo_site_charges_within_its_limits_and_answers_on_its_api(tmp_path: Path) -> None:
    import argparse

    args = argparse.Namespace(
        data=str(ROOT.parent / "shared" / "data"), hours=2.5, speed=0.0, step=10.0, strategy="edf",
        host="127.0.0.1", ocpp_port=0, http_port=0, database=str(tmp_path / "demo.db"),
    )  # fmt: skip
    config = live_config(args)
    endpoints: list[Endpoints] = []
    seen: list[tuple[float, float, bool]] = []
    api_answer: list[list[dict[str, object]]] = []
    grid = config.site.grid.max_import_w

    def on_step(state: LiveState) -> None:
        step = state.charging
        seen.append((state.truth.grid_w, state.truth.ev_w, bool(step and step.fallback)))

    async def ask_api() -> None:
        await _until(lambda: len(seen) > 30, timeout_s=60)
        (ep,) = endpoints
        async with httpx.AsyncClient(base_url=ep.http_url, timeout=10) as client:
            assert (await client.get("/api/stations")).status_code == 401
            answer = await client.get("/api/stations", headers={"Authorization": f"Bearer {ep.admin_token}"})
            assert answer.status_code == 200
            api_answer.append(answer.json())

    async with asyncio.timeout(240):
        demo = asyncio.create_task(run_live(config, endpoints.append, on_step))
        await ask_api()
        state = await demo

    assert len(seen) == int(timedelta(hours=2.5) / timedelta(seconds=10))
    assert state.arrived > 0
    assert max(ev for _, ev, _ in seen) > 5_000  # EVs really charged
    assert max(g for g, _, _ in seen) <= grid  # and the site never broke its grid limit
    assert not any(fallback for _, _, fallback in seen[5:])  # the EMS answered every step
    stations = api_answer[0]
    assert len(stations) == len(config.site.charging_points)
    versions = {s.get("ocpp_version") for s in stations}
    assert {"ocpp1.6", "ocpp2.0.1"} <= versions  # a mix of both generations, as the API names them


async def test_the_demo_site_with_the_ems_s_site_plan_keeps_its_limits_and_follows_the_plan(
    tmp_path: Path,
) -> None:
    """The EMS plans from the CSM's demand profile only (site_plan), over the in-memory exchange."""
    import argparse

    args = argparse.Namespace(
        data=str(ROOT.parent / "shared" / "data"), hours=2.0, speed=0.0, step=10.0, strategy="edf",
        host="127.0.0.1", ocpp_port=0, http_port=0, database=str(tmp_path / "demo.db"), site_plan=True,
    )  # fmt: skip
    config = live_config(args)
    assert config.site_plan
    grid = config.site.grid.max_import_w
    seen: list[tuple[float, float, bool, str]] = []

    def on_step(state: LiveState) -> None:
        step = state.charging
        seen.append((state.truth.grid_w, state.truth.ev_w, bool(step and step.fallback), state.grant_reason))

    async with asyncio.timeout(240):
        state = await run_live(config, lambda _: None, on_step)

    totals = state.totals
    assert len(seen) == int(timedelta(hours=2) / timedelta(seconds=10))
    assert max(ev for _, ev, _, _ in seen) > 5_000  # EVs charged
    assert max(g for g, _, _, _ in seen) <= grid  # within the grid limit, with the ESS following the plan
    assert totals.over_grid_steps == 0
    assert not any(fallback for _, _, fallback, _ in seen[5:])  # the EMS granted every step
    assert totals.plan_solves >= 8  # at least one a quarter hour
    assert totals.planned_steps > 0.9 * len(seen)  # the plan decided (nearly) every step
    assert totals.plan_fallbacks == len(seen) - totals.planned_steps
    assert any(reason == "site_plan" for _, _, _, reason in seen)  # and held the grant at times

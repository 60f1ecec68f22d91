"""The demo keeps its flow history in its database: every step's flows with the limit's reason, read back
after it stopped, and the dashboard's day chart drawn from it while it runs."""

from __future__ import annotations

import argparse
import asyncio
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx

from chargeflow.commands.demo import live_config
from chargeflow.runtime.app import open_stores
from chargeflow.runtime.demo import Endpoints, LiveState, run_live
from chargeflow.web.live import FlowHistory

ROOT = Path(__file__).parents[2]
PASSWORD = "history-test-password"


async def test_the_demos_steps_are_in_its_database_after_it_stopped(tmp_path: Path) -> None:
    args = argparse.Namespace(
        data=str(ROOT.parent / "shared" / "data"), hours=0.5, speed=600.0, step=10.0, strategy="edf",
        host="127.0.0.1", ocpp_port=0, http_port=0, database=str(tmp_path / "demo.db"),
    )  # fmt: skip
    config = replace(live_config(args), owner_password=PASSWORD)
    ready: list[Endpoints] = []
    started = asyncio.Event()
    steps: list[LiveState] = []
    stepped = asyncio.Event()

    def on_step(state: LiveState) -> None:
        steps.append(state)
        if len(steps) == 5:
            stepped.set()

    def on_ready(endpoints: Endpoints) -> None:
        ready.append(endpoints)
        started.set()

    async with asyncio.timeout(60):
        demo = asyncio.create_task(run_live(config, on_ready, on_step))
        await started.wait()
        async with httpx.AsyncClient(base_url=ready[0].http_url, timeout=10) as client:
            page = await client.get("/login")
            match = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert match is not None
            await client.post("/login", data={"password": PASSWORD, "csrf": match.group(1)})
            await stepped.wait()
            today = await client.get("/dashboard/plot.svg?range=today")
            assert today.status_code == 200
            assert today.headers["content-type"] == "image/svg+xml"
        await demo

    end = config.start + timedelta(hours=0.5)
    async with open_stores(config.database_url) as stores:
        stored = await stores.flows.range(config.start, end + timedelta(seconds=1), 10_000)
        assert len(stored) == len(steps) == 180  # 30 minutes of 10 s steps
        assert stored[-1].at == end
        assert any(s.limit_reason for s in stored)  # once EVs charge, their limits say why
        restarted = FlowHistory(store=stores.flows)
        assert await restarted.load_recent(end) == 180

"""The dashboard's server-sent events against the running demo: pushed on every new step, each a full
state, and a demo with a dashboard still open stops when its time is up."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from chargeflow.commands.demo import live_config
from chargeflow.runtime.demo import Endpoints, LiveState, run_live

ROOT = Path(__file__).parents[2]
PASSWORD = "stream-test-password"


async def _events(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    kind = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: ") and kind == "state":
            found.append(json.loads(line.removeprefix("data: ")))
            if len(found) == count:
                return found
    raise AssertionError("the stream ended early")


async def test_the_dashboard_stream_pushes_new_steps_and_lets_the_demo_stop(tmp_path: Path) -> None:
    args = argparse.Namespace(
        data=str(ROOT.parent / "shared" / "data"), hours=0.75, speed=300.0, step=10.0, strategy="edf",
        host="127.0.0.1", ocpp_port=0, http_port=0, database=str(tmp_path / "demo.db"),
    )  # fmt: skip
    config = replace(live_config(args), owner_password=PASSWORD)
    ready: list[Endpoints] = []
    started = asyncio.Event()

    def on_ready(endpoints: Endpoints) -> None:
        ready.append(endpoints)
        started.set()

    def on_step(_: LiveState) -> None:
        pass

    async with asyncio.timeout(60):
        demo = asyncio.create_task(run_live(config, on_ready, on_step))
        await started.wait()
        (ep,) = ready
        async with httpx.AsyncClient(base_url=ep.http_url, timeout=10) as client:
            page = await client.get("/login")
            match = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert match is not None
            await client.post("/login", data={"password": PASSWORD, "csrf": match.group(1)})
            async with client.stream("GET", "/dashboard/events") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                first, second = await _events(stream, 2)
                assert first["now"] < second["now"]  # a new step each time, not the same state again
                assert second["samples"] > first["samples"]
                assert set(second["flows"]) == {"grid_w", "building_w", "pv_w", "ess_w", "ev_w", "granted_w"}
                assert second["flows"]["grid_w"] <= config.site.grid.max_import_w
                assert len(second["stations"]) == len(config.site.charging_points)
                # the stream stays open while the demo runs out of time: it must stop all the same
                state = await demo
    assert state.now == config.start + timedelta(hours=0.75)  # it ran its whole time, then stopped

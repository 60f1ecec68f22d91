"""The dashboard and the driver page of ``chargeflow serve --site`` (a real server process, stations of
the ``ocpp`` library) in headless Chromium: the owner logs in and sees the stations, their sessions and the
limits with their reasons; a driver's link shows the session charging."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chargeflow.bench.ocpp_load import serve_process
from chargeflow.sim.drawing import DrawingStation, Ev, connected
from tests.e2e.test_serve_site import SITE, VERSIONS
from tests.e2e.test_web_browser import ARGS, CHROMIUM

ROOT = Path(__file__).parents[2]
PASSWORD = "owner-secret-for-serve-tests"
TOKEN = "browser-token-0123456789abcdef"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine: apt-get install chromium (.ci/run does)"
)


async def _keep_drawing(stations: list[DrawingStation], ev: Ev) -> None:
    while True:
        await asyncio.gather(*(s.report(ev, 1.0) for s in stations))
        await asyncio.sleep(1.0)


@contextlib.asynccontextmanager
async def _site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """``serve --site`` with six stations charging; yields the HTTP base URL."""
    site_file = tmp_path / "site.yaml"
    site_file.write_text(SITE)
    monkeypatch.setenv("CHARGEFLOW_OWNER_PASSWORD", PASSWORD)
    url = f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"
    async with (
        serve_process(url, TOKEN, "--site", str(site_file), "--step", "2") as server,
        contextlib.AsyncExitStack() as stack,
    ):
        stations = [
            await stack.enter_async_context(connected(server.ocpp_port, sid, version))
            for sid, version in VERSIONS.items()
        ]
        for i, s in enumerate(stations):
            await s.start_session(f"tag{i}")
        drawing = asyncio.create_task(_keep_drawing(stations, Ev()))
        try:
            yield f"http://127.0.0.1:{server.http_port}"
        finally:
            drawing.cancel()
            await asyncio.gather(drawing, return_exceptions=True)


async def test_the_owner_and_a_driver_see_the_serve_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.async_api import async_playwright

    async with _site(tmp_path, monkeypatch) as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1400, "height": 1100})).new_page()
            errors: list[Any] = []
            page.on("pageerror", lambda e: errors.append(e))
            await page.goto(f"{base}/dashboard")
            assert page.url.endswith("/login")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url("**/dashboard")
            # locators, not wait_for_function: that evaluates a string, which the pages' CSP refuses
            await page.locator("#live", has_text=re.compile("^live$")).wait_for(
                state="attached", timeout=15_000
            )
            stations = page.locator("#stations tbody tr")
            assert await stations.count() == 6
            sessions = page.locator("#sessions tbody tr")
            await sessions.nth(5).wait_for(timeout=15_000)
            text = await page.text_content("#sessions") or ""
            assert "cp1" in text
            assert "cp6" in text
            await page.wait_for_timeout(4_000)  # a few steps of history for the picture
            await page.screenshot(path=str(ROOT / "docs" / "serve-dashboard.png"), full_page=True)

            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as api:
                active = (await api.get("/api/sessions", params={"active": True})).json()
            session = next(s for s in active if s["station_id"] == "cp1")
            link = await page.get_attribute(f'a[aria-label="driver page of session {session["id"]}"]', "href")
            assert link is not None
            driver = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
            driver.on("pageerror", lambda e: errors.append(e))
            await driver.goto(base + link)
            assert "Station cp1" in (await driver.text_content("h1") or "")
            await driver.locator("#d-state", has_text=re.compile("^Charging$")).wait_for(
                state="attached", timeout=15_000
            )
            assert not errors, errors
        finally:
            await browser.close()

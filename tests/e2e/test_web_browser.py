"""The dashboard and the driver page in headless Chromium, against the running demo site.

The demo runs in this process on a fast clock; Playwright drives Debian's Chromium (never a downloaded
browser). The screenshots in docs/ come from these tests.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from chargeflow.commands.demo import live_config
from chargeflow.runtime.demo import Endpoints, LiveState, run_live

ROOT = Path(__file__).parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "owner-secret-for-tests"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine: apt-get install chromium (.ci/run does)"
)


async def _until_async(condition: Any, timeout_s: float) -> Any:
    async with asyncio.timeout(timeout_s):
        while True:
            found = await condition()
            if found:
                return found
            await asyncio.sleep(0.1)


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Endpoints]:
    """The demo site at 300× real time, until an EV charges on it."""
    args = argparse.Namespace(
        data=str(ROOT.parent / "shared" / "data"), hours=None, speed=300.0, step=10.0, strategy="edf",
        host="127.0.0.1", ocpp_port=0, http_port=0, database=str(tmp_path / "demo.db"),
    )  # fmt: skip
    config = replace(live_config(args), owner_password=PASSWORD)
    ready: list[Endpoints] = []
    steps = [0]

    def on_step(_: LiveState) -> None:
        steps[0] += 1

    task = asyncio.create_task(run_live(config, ready.append, on_step))
    try:
        await _until_async(lambda: _ready(ready), 30)
        (endpoints,) = ready
        await _until_async(lambda: _charging_session(endpoints), 40)
        yield endpoints
    finally:
        # Cancel until it is done: under Python 3.11 ``asyncio.wait_for`` can drop a cancellation that
        # arrives as its inner call finishes, and this demo has no end time of its own.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        with pytest.raises(asyncio.CancelledError):
            await task


async def _ready(ready: list[Endpoints]) -> bool:
    return bool(ready)


async def _charging_session(ep: Endpoints) -> dict[str, Any] | None:
    """An active session that has charged some energy already."""
    headers = {"Authorization": f"Bearer {ep.admin_token}"}
    async with httpx.AsyncClient(base_url=ep.http_url, timeout=10, headers=headers) as client:
        sessions = (await client.get("/api/sessions", params={"active": True})).json()
    for s in sessions:
        if (s.get("energy_wh") or 0) > 500:
            found: dict[str, Any] = s
            return found
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


def _csp_kept(page: Any) -> None:
    """Fail on anything the pages' Content-Security-Policy blocks (``web.headers``)."""

    def seen(message: Any) -> None:
        if "Content Security Policy" in message.text:
            pytest.fail(f"blocked by the CSP on {page.url}: {message.text}")

    page.on("console", seen)


async def _login(browser: Any, ep: Endpoints) -> Any:
    page = await (await browser.new_context(viewport={"width": 1400, "height": 1100})).new_page()
    page.on("pageerror", lambda e: pytest.fail(f"script error on the dashboard: {e}"))
    _csp_kept(page)
    await page.goto(ep.dashboard_url)
    assert page.url.endswith("/login")  # the dashboard needs the owner's login
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/dashboard")
    return page


async def test_the_dashboard_shows_live_flows_and_a_stations_answer(demo: Endpoints, browser: Any) -> None:
    page = await _login(browser, demo)
    # locators, not wait_for_function: that evaluates a string, which the pages' CSP refuses
    await page.locator("#live", has_text=re.compile("^live$")).wait_for(state="attached", timeout=10_000)
    first = await page.text_content("#now")
    first_grid = await page.text_content("#fl-grid")
    # pushed, not polled: the page's values move by themselves
    await (
        page.locator("#now")
        .filter(has_not_text=re.compile(f"^{re.escape(first or '')}$"))
        .wait_for(state="attached", timeout=10_000)
    )
    assert re.fullmatch(r"(import|export) \d+\.\d kW", first_grid or "")
    stations = page.locator("#stations tbody tr")
    assert await stations.count() >= 8
    assert await page.locator("#sessions tbody tr").count() >= 1
    assert "ocpp" in (await stations.first.text_content() or "")

    await page.get_by_role("button", name=re.compile(r"^Reset ")).first.click()
    answer = stations.first.locator("output")
    await answer.filter(has_text="Reset:").wait_for(timeout=10_000)
    assert re.search(r'"status": ?"(Accepted|Scheduled)"', await answer.text_content() or "")

    await page.wait_for_timeout(11_000)  # the plot redraws every 10 s: let it show some history
    await page.screenshot(path=str(ROOT / "docs" / "dashboard.png"), full_page=True)

    # without the owner's cookie there is nothing to see
    async with httpx.AsyncClient(base_url=demo.http_url) as anonymous:
        assert (await anonymous.get("/dashboard/state.json")).status_code == 401
        assert (await anonymous.get("/dashboard", follow_redirects=False)).status_code == 303


async def test_a_driver_sets_preferences_and_the_ems_honours_them(demo: Endpoints, browser: Any) -> None:
    owner = await _login(browser, demo)
    session = await _charging_session(demo)
    assert session is not None
    link = await owner.get_attribute(f'a[aria-label="driver page of session {session["id"]}"]', "href")
    assert link is not None

    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    driver = await phone.new_page()
    _csp_kept(driver)
    await driver.goto(demo.http_url + link)
    assert "Station " + session["station_id"] in await driver.text_content("h1")
    await driver.locator("#d-state", has_text=re.compile("^Charging$")).wait_for(
        state="attached", timeout=10_000
    )
    reason_before = await driver.text_content("#d-reason")
    expected_before = await driver.text_content("#d-expected")

    # ΔE_max below what is charged already: the EMS must stop granting this EV more
    await driver.get_by_label("Energy I need by then (kWh)").fill("0")
    await driver.get_by_label("Energy I would like (kWh)").fill("0.1")
    await driver.get_by_role("button", name="Save preferences").click()
    await driver.wait_for_url("**saved=1")
    assert "Saved" in (await driver.get_by_role("status").filter(has_text="Saved").text_content() or "")
    await driver.locator("#d-reason", has_text="energy wished").wait_for(state="attached", timeout=15_000)
    assert reason_before != await driver.text_content("#d-reason")
    assert expected_before != await driver.text_content("#d-expected")
    assert await driver.get_by_label("Energy I would like (kWh)").input_value() == "0.1"  # kept for next time
    await driver.screenshot(path=str(ROOT / "docs" / "driver.png"), full_page=True)

    # a stranger: a wrong secret, another session's secret, the station's page without a token
    stranger = await (await browser.new_context()).new_page()
    secret = link.split("s=")[1]
    forged = f"{demo.http_url}/charge/{session['station_id']}/session/{session['id']}?s={'0' * len(secret)}"
    answer = await stranger.goto(forged)
    assert answer is not None
    assert answer.status == 403
    assert "kWh" not in (await stranger.content())
    other = f"{demo.http_url}/charge/{session['station_id']}/session/{session['id'] + 1}?s={secret}"
    answer = await stranger.goto(other)
    assert answer is not None
    assert answer.status == 403
    await stranger.goto(f"{demo.http_url}/charge/{session['station_id']}")
    await stranger.get_by_label("Session code").fill("12345678")
    await stranger.get_by_role("button", name="Show my session").click()
    await stranger.get_by_role("alert").wait_for()
    assert "No session with that code" in (await stranger.get_by_role("alert").text_content() or "")

"""#13 item 10: a driver reaches a session by its link or its short code, not by its id token; wrong
codes are throttled per client address and per station; a start needs the station page's own form.

httpx against the ASGI app, each client with its own source address, and a real OCPP 1.6 station.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI
from ocpp.v16 import call

from chargeflow.runtime.app import CsmNode
from chargeflow.web.api import create_api
from chargeflow.web.auth import DriverLinks, OwnerAuth
from chargeflow.web.ui import UiSettings
from tests.integration.conftest import port_of
from tests.integration.stations import Station16, iso, open_ws, running
from tests.integration.test_web_ui import NOW, PASSWORD, TOKEN, FakeView

Client = Callable[[str], httpx.AsyncClient]


@pytest.fixture
def links() -> DriverLinks:
    return DriverLinks(b"k" * 32)


@pytest.fixture
def app(node: CsmNode, links: DriverLinks) -> FastAPI:
    counter = itertools.count(100)
    ui = UiSettings(FakeView(), OwnerAuth(PASSWORD), links)
    return create_api(node.service, node.operations, TOKEN, lambda: next(counter), ui)


@pytest.fixture
async def client_from(app: FastAPI) -> AsyncIterator[Client]:
    """A browser at a given address."""
    async with AsyncExitStack() as stack:

        def make(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40_000))
            return _enter(stack, transport)

        yield make


def _enter(stack: AsyncExitStack, transport: httpx.ASGITransport) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=transport, base_url="http://site")
    stack.push_async_callback(client.aclose)
    return client


async def csrf_of(client: httpx.AsyncClient, station_id: str) -> str:
    page = await client.get(f"/charge/{station_id}")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


async def find(client: httpx.AsyncClient, station_id: str, code: str) -> httpx.Response:
    return await client.post(
        f"/charge/{station_id}/find", data={"code": code, "csrf": await csrf_of(client, station_id)}
    )


async def test_wrong_codes_are_throttled_per_address_and_per_station(
    node: CsmNode, client_from: Client, links: DriverLinks
) -> None:
    async with open_ws(port_of(node), "DA-1", "ocpp1.6") as ws:
        station = Station16("DA-1", ws)
        async with running(station):
            started = await station.call(
                call.StartTransaction(connector_id=1, id_tag="CARD-1", meter_start=0, timestamp=iso(NOW))
            )
            tx = started.transaction_id
            code = links.code(tx)
            assert re.fullmatch(r"\d{8}", code)
            driver = client_from("10.0.0.1")
            spaced = await find(driver, "DA-1", f" {code[:4]} {code[4:]} ")  # as the receipt groups it
            assert spaced.headers["location"] == f"/charge/DA-1/session/{tx}?s={links.secret(tx)}"
            assert (await driver.get(spaced.headers["location"])).status_code == 200
            # the id token, which the old page traded for the link, opens nothing
            assert (await find(driver, "DA-1", "CARD-1")).headers[
                "location"
            ] == "/charge/DA-1?answer=not-yours"

            guesser = client_from("10.0.0.2")
            answers = [(await find(guesser, "DA-1", f"{n:08d}")).status_code for n in range(8)]
            assert answers == [303] * 5 + [429] * 3  # five wrong codes per address, then wait
            throttled = await find(guesser, "DA-1", code)  # even the right code, while it waits
            assert throttled.status_code == 429
            assert int(throttled.headers["Retry-After"]) > 0
            assert "Too many wrong codes" in throttled.text

            # from many addresses: ten wrong codes per station, then the station's form waits for all
            for n in range(4):
                await find(client_from(f"10.0.1.{n}"), "DA-1", f"{n:08d}")
            assert (await find(client_from("10.0.2.1"), "DA-1", code)).status_code == 429
            # the link itself still opens the session: only the short code is throttled
            assert (await driver.get(spaced.headers["location"])).status_code == 200


async def test_a_start_needs_the_station_pages_own_form(node: CsmNode, client_from: Client) -> None:
    async with open_ws(port_of(node), "DA-2", "ocpp1.6") as ws:
        station = Station16("DA-2", ws)
        async with running(station):
            await station.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            victim = client_from("10.0.0.3")
            csrf = await csrf_of(victim, "DA-2")
            # a form on another site: the browser sends the cookie only from our own pages (SameSite),
            # and the other site cannot read the token from the page
            forged = await victim.post("/charge/DA-2/start", data={"id_token": "STOLEN-CARD"})
            guessed = await victim.post("/charge/DA-2/start", data={"id_token": "STOLEN-CARD", "csrf": "x"})
            stranger = client_from("10.0.0.4")
            replayed = await stranger.post(
                "/charge/DA-2/start", data={"id_token": "STOLEN-CARD", "csrf": csrf}
            )
            ours = await victim.post("/charge/DA-2/start", data={"id_token": "MY-CARD", "csrf": csrf})
    assert (forged.status_code, guessed.status_code, replayed.status_code) == (403, 403, 403)
    assert ours.headers["location"] == "/charge/DA-2?answer=Accepted"
    assert station.remote_starts == ["MY-CARD"]
    cookie = (await client_from("10.0.0.5").get("/charge/DA-2")).headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie


async def test_the_browser_that_started_charging_is_led_to_its_session(
    node: CsmNode, client_from: Client, links: DriverLinks
) -> None:
    async with open_ws(port_of(node), "DA-3", "ocpp1.6") as ws:
        station = Station16("DA-3", ws)
        async with running(station):
            await station.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            driver = client_from("10.0.0.6")
            other = client_from("10.0.0.7")
            await csrf_of(other, "DA-3")
            started = await driver.post("/charge/DA-3/start", data={"csrf": await csrf_of(driver, "DA-3")})
            waiting = await driver.get(started.headers["location"])  # no session yet: the page reloads
            begun = await station.call(
                call.StartTransaction(connector_id=1, id_tag="web-driver", meter_start=0, timestamp=iso(NOW))
            )
            tx = begun.transaction_id
            led = await driver.get("/charge/DA-3")
            again = await driver.get("/charge/DA-3")  # the ticket is used up
            stranger = await other.get("/charge/DA-3")  # the same free-vend token, another browser
    assert started.headers["location"] == "/charge/DA-3?answer=Accepted"
    assert waiting.status_code == 200
    assert '<meta http-equiv="refresh" content="5">' in waiting.text
    assert "This page opens your session" in waiting.text
    assert led.status_code == 303
    assert led.headers["location"] == f"/charge/DA-3/session/{tx}?s={links.secret(tx)}"
    assert again.status_code == 200
    assert stranger.status_code == 200
    assert "session/" not in stranger.text


async def test_many_guesses_at_once_do_not_outrun_the_budget(
    node: CsmNode, client_from: Client, links: DriverLinks
) -> None:
    async with open_ws(port_of(node), "DA-4", "ocpp1.6") as ws:
        station = Station16("DA-4", ws)
        async with running(station):
            await station.call(
                call.StartTransaction(connector_id=1, id_tag="CARD-4", meter_start=0, timestamp=iso(NOW))
            )
            guesser = client_from("10.0.0.8")
            csrf = await csrf_of(guesser, "DA-4")
            answers = await asyncio.gather(
                *(
                    guesser.post("/charge/DA-4/find", data={"code": f"{n:08d}", "csrf": csrf})
                    for n in range(40)
                )
            )
    codes = [a.status_code for a in answers]
    assert codes.count(303) == 5  # the address's budget, however many arrive together
    assert codes.count(429) == 35

"""The dashboard's and the driver page's HTTP side against a live CSM and a real OCPP 1.6 station:
owner login with CSRF, station actions, accounting CSV, the driver's link secret and the preferences API."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from ocpp.v16 import call

from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import TransactionRecord
from chargeflow.csm.smart_charging import ChargingStep
from chargeflow.runtime.app import CsmNode
from chargeflow.site.model import ChargingPoint, Circuit, GridConnection, Site
from chargeflow.web.api import create_api
from chargeflow.web.auth import OWNER_COOKIE, DriverLinks, OwnerAuth
from chargeflow.web.live import ConnectorReading, FlowHistory, FlowSample
from chargeflow.web.ui import UiSettings
from tests.integration.conftest import port_of
from tests.integration.stations import Station16, iso, open_ws, running

TOKEN = "test-admin-token"
PASSWORD = "correct horse"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
SITE = Site(
    "s",
    GridConnection(50_000, 20_000),
    (Circuit("main", None, (63.0, 63.0, 63.0)),),
    (ChargingPoint("UI-1", "main"),),
)


class FakeView:
    """A site view with fixed flows, recording the preferences it is given."""

    def __init__(self) -> None:
        self.history_ = FlowHistory()
        self.history_.record(FlowSample(NOW, 10_000, 8_000, 2_000, 0, 4_000, 5_000))
        self.set: dict[int, Preferences] = {}
        self.site_ = SITE
        self.asked: list[tuple[datetime, datetime, int]] = []  # the ranges read from the history
        self.step: ChargingStep | None = None

    @property
    def site(self) -> Site:
        return self.site_

    def now(self) -> datetime:
        return NOW

    def history(self) -> Sequence[FlowSample]:
        return self.history_.samples()

    async def history_between(self, start: datetime, end: datetime, max_points: int) -> Sequence[FlowSample]:
        self.asked.append((start, end, max_points))
        return await self.history_.between(start, end, max_points)

    def charging(self) -> ChargingStep | None:
        return self.step

    def reading(self, station_id: str, evse_id: int) -> ConnectorReading | None:
        return ConnectorReading(4_000, (6.0, 6.0, 6.0), 40.0)

    def preferences_of(self, tx: TransactionRecord) -> Preferences:
        return self.set.get(tx.id, Preferences(0, 30_000, NOW + timedelta(hours=8)))

    def set_preferences(self, transaction_id: int, preferences: Preferences) -> None:
        self.set[transaction_id] = preferences

    async def wait_newer(self, version: int, timeout_s: float) -> int:
        return await self.history_.wait_newer(version, timeout_s)


@pytest.fixture
def view() -> FakeView:
    return FakeView()


@pytest.fixture
def links() -> DriverLinks:
    return DriverLinks(b"k" * 32)


@pytest.fixture
async def client(node: CsmNode, view: FakeView, links: DriverLinks) -> AsyncIterator[httpx.AsyncClient]:
    counter = itertools.count(100)
    ui = UiSettings(view, OwnerAuth(PASSWORD), links)
    app = create_api(node.service, node.operations, TOKEN, lambda: next(counter), ui)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://site") as c:
        yield c


async def _login(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return await client.post("/login", data={"password": password, "csrf": match.group(1)})


async def _station_csrf(client: httpx.AsyncClient, station_id: str) -> str:
    """The CSRF token of a station's driver page (its cookie is now in the client)."""
    page = await client.get(f"/charge/{station_id}")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


def _csrf(page: httpx.Response) -> str:
    match = re.search(r'<meta name="csrf" content="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


async def test_repeated_wrong_passwords_get_429_with_retry_after(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await _login(client, "wrong")).headers["location"] == "/login?failed=true"
    throttled = await _login(client)  # even the right password, while locked out
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 60
    assert "Too many wrong passwords" in throttled.text
    assert OWNER_COOKIE not in client.cookies


async def test_owner_login_needs_the_password_and_the_forms_csrf_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/dashboard")).headers["location"] == "/login"
    await client.get("/login")
    forged = await client.post("/login", data={"password": PASSWORD, "csrf": "guessed"})
    assert forged.status_code == 403
    wrong = await _login(client, "wrong")
    assert wrong.headers["location"] == "/login?failed=true"
    assert OWNER_COOKIE not in client.cookies
    right = await _login(client)
    assert right.headers["location"] == "/dashboard"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    dashboard = await client.get("/dashboard")
    assert dashboard.status_code == 200
    state = (await client.get("/dashboard/state.json")).json()
    assert state["flows"]["grid_w"] == 10_000
    assert state["circuits"][0]["fuse_a"] == [63.0, 63.0, 63.0]
    svg = await client.get("/dashboard/plot.svg")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.lstrip().startswith("<?xml")


async def test_the_chart_shows_the_range_asked_for_with_days_from_the_sites_midnight(
    client: httpx.AsyncClient, view: FakeView
) -> None:
    view.site_ = replace(SITE, timezone="Europe/Vienna")  # NOW is 12:00 there
    view.history_.record(FlowSample(NOW + timedelta(minutes=1), 9_000, 8_000, 2_000, 0, 3_000, 4_000))
    await _login(client)
    recent = await client.get("/dashboard/plot.svg")
    assert recent.headers["content-type"] == "image/svg+xml"
    assert view.asked == []  # the last hours: from memory
    charts = {
        name: await client.get(f"/dashboard/plot.svg?range={name}") for name in ("today", "yesterday", "7d")
    }
    assert all(c.status_code == 200 and c.text.lstrip().startswith("<?xml") for c in charts.values())
    midnight = datetime(2026, 4, 30, 22, 0, tzinfo=UTC)  # 1 May, 00:00 in Vienna
    assert view.asked == [
        (midnight, NOW, 720),
        (midnight - timedelta(days=1), midnight, 720),
        (NOW - timedelta(days=7), NOW, 720),
    ]
    assert (await client.get("/dashboard/plot.svg?range=month")).status_code == 422
    page = await client.get("/dashboard?range=yesterday")
    assert 'src="/dashboard/plot.svg?range=yesterday"' in page.text
    assert '<a href="/dashboard?range=yesterday" aria-current="page">yesterday</a>' in page.text
    assert '<a href="/dashboard?range=today">today</a>' in page.text
    assert (await client.get("/dashboard?range=month")).status_code == 422


async def test_the_dashboard_warns_of_a_station_that_refuses_every_limit(
    client: httpx.AsyncClient, view: FakeView
) -> None:
    await _login(client)
    assert "refuses" not in (await client.get("/dashboard")).text.split("<script")[0]
    view.step = ChargingStep(NOW, 0.0, 0.0, 20_000.0, None, (), (), refusing=("UI-1",))
    page = (await client.get("/dashboard")).text
    match = re.search(r'<ul id="warnings"[^>]*>(.*?)</ul>', page)
    assert match is not None
    assert match.group(1) == (
        "<li>Station UI-1 refuses every charging limit: it charges outside the site&#39;s control</li>"
    )
    state = (await client.get("/dashboard/state.json")).json()
    assert state["warnings"] == [
        "Station UI-1 refuses every charging limit: it charges outside the site's control"
    ]


async def test_a_station_action_needs_csrf_and_returns_the_stations_answer(
    client: httpx.AsyncClient, node: CsmNode
) -> None:
    await _login(client)
    csrf = _csrf(await client.get("/dashboard"))
    async with open_ws(port_of(node), "UI-1", "ocpp1.6") as ws:
        station = Station16("UI-1", ws)
        async with running(station):
            await station.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            without = await client.post("/dashboard/stations/UI-1/reset", data={})
            wrong = await client.post("/dashboard/stations/UI-1/reset", data={"csrf": "x"})
            answer = await client.post("/dashboard/stations/UI-1/reset", data={"csrf": csrf})
            listed = (await client.get("/dashboard/state.json")).json()["stations"]
    assert without.status_code == 422
    assert wrong.status_code == 403
    assert answer.status_code == 200
    assert answer.json()["action"] == "Reset"
    assert answer.json()["answer"] == {"status": "Accepted"}  # what the test station says
    assert [(s["id"], s["ocpp_version"]) for s in listed] == [("UI-1", "ocpp1.6")]
    qr = await client.get("/dashboard/stations/UI-1/qr.svg")
    assert qr.headers["content-type"] == "image/svg+xml"
    assert "Charge at UI-1: http://site/charge/UI-1" in qr.text
    assert (await client.get("/dashboard/stations/NOPE/qr.svg")).status_code == 404


async def test_driver_link_preferences_api_and_accounting(
    client: httpx.AsyncClient, node: CsmNode, view: FakeView, links: DriverLinks
) -> None:
    async with open_ws(port_of(node), "UI-1", "ocpp1.6") as ws:
        station = Station16("UI-1", ws)
        async with running(station):
            started = await station.call(
                call.StartTransaction(connector_id=1, id_tag="CARD-7", meter_start=0, timestamp=iso(NOW))
            )
            tx = started.transaction_id
            secret = links.secret(tx)
            page = f"/charge/UI-1/session/{tx}"
            assert (await client.get(page, params={"s": "0" * 32})).status_code == 403
            assert (await client.get(page, params={"s": links.secret(tx + 1)})).status_code == 403
            mine = await client.get(page, params={"s": secret})
            csrf = await _station_csrf(client, "UI-1")
            found = await client.post("/charge/UI-1/find", data={"code": links.code(tx), "csrf": csrf})
            by_token = await client.post("/charge/UI-1/find", data={"code": "CARD-7", "csrf": csrf})

            body = {"needed_wh": 5_000, "wished_wh": 12_000, "departure": "2026-05-01T16:00:00Z",
                    "price_cap_needed_per_kwh": "0.40"}  # fmt: skip
            url = f"/api/sessions/{tx}/preferences"
            nobody = await client.put(url, json=body)
            other = await client.put(
                url, json=body, headers={"Authorization": f"Bearer {links.secret(tx + 1)}"}
            )
            driver = await client.put(url, json=body, headers={"Authorization": f"Bearer {secret}"})
            by_driver = view.set.get(tx)
            bad = await client.put(
                url, json={**body, "wished_wh": 1_000}, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            form = await client.post(
                f"{page}/preferences",
                data={"s": secret, "needed_kwh": "2", "wished_kwh": "20", "departure": "17:30"},
            )
            form_prefs = view.set[tx]
            by_soc = await client.post(
                f"{page}/preferences",
                data={"s": secret, "needed_kwh": "2", "target_soc_pct": "80", "battery_kwh": "60",
                      "departure": "17:30"},
            )  # fmt: skip
            soc_prefs = view.set[tx]
            remembered = await client.get(page, params={"s": secret})
            await station.call(call.StopTransaction(meter_stop=7_500, timestamp=iso(NOW), transaction_id=tx))
    assert mine.status_code == 200
    assert "Station UI-1" in mine.text
    assert found.headers["location"] == f"{page}?s={secret}"
    assert by_token.headers["location"] == "/charge/UI-1?answer=not-yours"  # the card opens nothing
    assert nobody.status_code == 401
    assert other.status_code == 401
    assert driver.status_code == 200
    assert by_driver == Preferences(5_000, 12_000, datetime(2026, 5, 1, 16, tzinfo=UTC), Decimal("0.40"))
    assert bad.status_code == 422
    assert form.status_code == 303
    assert form_prefs == Preferences(2_000, 20_000, datetime(2026, 5, 1, 17, 30, tzinfo=UTC))
    assert by_soc.status_code == 303
    # 80 % of 60 kWh from the 40 % the EV reports: 24 kWh more (nothing metered yet in this session)
    assert soc_prefs == Preferences(2_000, 24_000, datetime(2026, 5, 1, 17, 30, tzinfo=UTC))
    assert 'name="wished_kwh" inputmode="decimal" value="24"' in remembered.text

    await _login(client)
    csv_text = (await client.get("/dashboard/accounting.csv", params={"by": "id_token"})).text
    assert csv_text.splitlines() == ["id_token,sessions,energy_wh,cost", "CARD-7,1,7500,2.25"]
    by_month = await client.get("/dashboard/accounting.csv", params={"by": "month", "since": "2026-05-01"})
    assert by_month.text.splitlines()[1:] == ["2026-05,1,7500,2.25"]
    later = await client.get("/dashboard/accounting.csv", params={"by": "day", "since": "2026-05-02"})
    assert later.text.splitlines()[1:] == []
    (ended,) = (await client.get("/dashboard/state.json")).json()["past"]
    assert (ended["id"], ended["energy_wh"], ended["needed_wh"], ended["needs_met"]) == (
        tx,
        7_500,
        2_000,
        True,
    )


async def test_a_driver_starts_charging_from_the_stations_page(
    client: httpx.AsyncClient, node: CsmNode
) -> None:
    # Free charging: the QR page's "start" asks the station for a remote start and shows its answer.
    async with open_ws(port_of(node), "UI-2", "ocpp1.6") as ws:
        station = Station16("UI-2", ws)
        async with running(station):
            await station.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            csrf = await _station_csrf(client, "UI-2")
            started = await client.post("/charge/UI-2/start", data={"id_token": "", "csrf": csrf})
            with_token = await client.post("/charge/UI-2/start", data={"id_token": " TAG-7 ", "csrf": csrf})
    assert started.status_code == 303
    assert started.headers["location"] == "/charge/UI-2?answer=Accepted"
    assert with_token.headers["location"] == "/charge/UI-2?answer=Accepted"
    assert station.remote_starts == ["web-driver", "TAG-7"]  # the site's free-vend token, then the driver's
    offline = await client.post("/charge/UI-9/start", data={"id_token": "", "csrf": csrf})
    assert offline.status_code == 409  # no station UI-9 connected: said so, nothing sent

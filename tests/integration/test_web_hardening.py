"""#13 item 12: the owner login's lockout holds against a rotating X-Forwarded-For (through a real
uvicorn), security headers on every answer, station ids URL-encoded in links, and drivers' links that
still open their sessions after a restart."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from ocpp.v16 import call

from chargeflow.cli import build_parser
from chargeflow.commands.serve import settings_from
from chargeflow.runtime.app import CsmNode, http_port, http_server
from chargeflow.site.config import ConfigError
from chargeflow.web.api import create_api
from chargeflow.web.auth import DriverLinks, OwnerAuth
from chargeflow.web.ui import UiSettings
from tests.integration.conftest import port_of
from tests.integration.stations import Station16, iso, open_ws, running
from tests.integration.test_web_ui import NOW, PASSWORD, TOKEN, FakeView

TEMPLATES = Path(__file__).parents[2] / "src" / "chargeflow" / "web" / "templates"


def make_app(node: CsmNode, links: DriverLinks | None = None) -> FastAPI:
    counter = itertools.count(100)
    ui = UiSettings(FakeView(), OwnerAuth(PASSWORD), links or DriverLinks(b"k" * 32))
    return create_api(node.service, node.operations, TOKEN, lambda: next(counter), ui)


@asynccontextmanager
async def uvicorn_serving(app: FastAPI, trusted_proxies: Sequence[str] = ()) -> AsyncIterator[str]:
    server = http_server(app, "127.0.0.1", 0, trusted_proxies)
    task = asyncio.create_task(server.serve())
    try:
        await asyncio.wait_for(server.listening.wait(), 10)
        yield f"http://127.0.0.1:{http_port(server)}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def login(client: httpx.AsyncClient, password: str, forwarded_for: str) -> httpx.Response:
    page = await client.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return await client.post(
        "/login",
        data={"password": password, "csrf": match.group(1)},
        headers={"X-Forwarded-For": forwarded_for},
    )


async def test_a_rotating_x_forwarded_for_does_not_escape_the_login_lockout(node: CsmNode) -> None:
    async with uvicorn_serving(make_app(node)) as url, httpx.AsyncClient(base_url=url) as client:
        answers = [(await login(client, "wrong", f"198.51.100.{n}")).status_code for n in range(5)]
        locked = await login(client, PASSWORD, "198.51.100.77")
    assert answers == [303] * 5
    assert locked.status_code == 429  # the header names nobody: the lockout is the socket's address's


async def test_behind_a_named_proxy_the_client_is_the_proxys_last_untrusted_address(node: CsmNode) -> None:
    async with (
        uvicorn_serving(make_app(node), ["127.0.0.1"]) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        # the proxy appends the address it saw; whatever the client put before it is not believed
        for n in range(5):
            await login(client, "wrong", f"10.9.9.{n}, 203.0.113.7")
        locked = await login(client, PASSWORD, "10.9.9.99, 203.0.113.7")
        other_driver = await login(client, PASSWORD, "203.0.113.8")
    assert locked.status_code == 429
    assert other_driver.headers["location"] == "/dashboard"  # another client behind the proxy may log in


def test_trusted_proxies_are_addresses_or_networks() -> None:
    args = build_parser().parse_args(["serve", "--trusted-proxy", "10.0.0.1", "--trusted-proxy", "fd00::/8"])
    assert settings_from(args, {})[0].trusted_proxies == ("10.0.0.1", "fd00::/8")
    assert settings_from(build_parser().parse_args(["serve"]), {})[0].trusted_proxies == ()
    with pytest.raises(ConfigError, match="trusted-proxy"):
        settings_from(build_parser().parse_args(["serve", "--trusted-proxy", "proxy.example"]), {})


async def test_every_answer_carries_the_security_headers(node: CsmNode) -> None:
    await node.service.register_station("H-1", None)
    transport = httpx.ASGITransport(app=make_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://site") as client:
        answers = [
            await client.get(path)
            for path in ("/login", "/charge/H-1", "/dashboard", "/static/style.css", "/api/stations", "/nope")
        ]
        docs = await client.get("/docs")
    assert [a.status_code for a in answers] == [200, 200, 303, 200, 401, 404]
    for answer in answers:
        csp = answer.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp
        assert "frame-ancestors 'none'" in csp
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "cdn.jsdelivr.net" in docs.headers["Content-Security-Policy"]  # Swagger UI's own CDN, there only


def test_the_pages_need_no_inline_script_or_style() -> None:
    """What the CSP forbids: inline scripts (a JSON data block is not run), handlers, style attributes."""
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        for script in re.findall(r"<script([^>]*)>", text):
            assert "src=" in script or 'type="application/json"' in script, template.name
        assert not re.search(r"\son[a-z]+=", text), template.name
        assert " style=" not in text, template.name
        assert "<style" not in text, template.name


async def test_links_url_encode_the_station_id(node: CsmNode) -> None:
    await node.service.register_station("A B#1?x", None)
    transport = httpx.ASGITransport(app=make_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://site") as client:
        page = await client.get("/charge/A%20B%231%3Fx")
        await client.get("/login")
        logged_in = await login(client, PASSWORD, "")
        assert logged_in.status_code == 303
        qr = await client.get("/dashboard/stations/A%20B%231%3Fx/qr.svg")
    assert page.status_code == 200
    assert 'action="/charge/A%20B%231%3Fx/start"' in page.text
    assert "http://site/charge/A%20B%231%3Fx" in qr.text


async def test_a_drivers_link_still_opens_the_session_after_a_restart(node: CsmNode) -> None:
    env = {"CHARGEFLOW_OWNER_PASSWORD": "owner-password-1"}
    args = build_parser().parse_args(["serve", "--site", "site.yaml"])
    first, _ = settings_from(args, env)
    async with open_ws(port_of(node), "R-1", "ocpp1.6") as ws:
        station = Station16("R-1", ws)
        async with running(station):
            started = await station.call(
                call.StartTransaction(connector_id=1, id_tag="CARD-1", meter_start=0, timestamp=iso(NOW))
            )
            tx = started.transaction_id
            link = f"/charge/R-1/session/{tx}?s={DriverLinks(first.link_key).secret(tx)}"
            opened = []
            # the same environment at the next start: the same key (none of it generated)
            for settings, _ in (
                (first, None),
                settings_from(args, env),
                settings_from(args, {**env, "CHARGEFLOW_LINK_KEY": "k"}),
            ):
                app = make_app(node, DriverLinks(settings.link_key))
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://s"
                ) as c:
                    opened.append((await c.get(link)).status_code)
    assert opened == [200, 200, 403]  # a new CHARGEFLOW_LINK_KEY is a new key: old links end
    # the key from the password is stretched: not the one fast hash a driver could test guesses with
    assert first.link_key is not None
    assert settings_from(args, {"CHARGEFLOW_LINK_KEY": "k"})[0].link_key != first.link_key
    assert settings_from(build_parser().parse_args(["serve"]), {})[0].link_key is None

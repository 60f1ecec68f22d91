"""The HTTP JSON meter against a small local server: it polls, reads the value at its JSON path, and keeps
its last reading (which goes stale) when the server answers an error or nonsense."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chargeflow.clock import SystemClock
from chargeflow.devices.http import HttpMeter
from chargeflow.site.config import MeterConfig


class _Shelly(BaseHTTPRequestHandler):
    answer: tuple[int, bytes] = (200, b"{}")

    def do_GET(self) -> None:
        status, body = type(self).answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Shelly]]]:
    handler = type("Handler", (_Shelly,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/rpc/EM.GetStatus?id=0", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


async def _until(predicate: Any, timeout_s: float = 5.0) -> None:
    """Poll: the meter sets no event for a test to wait on."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_an_http_meter_polls_and_keeps_its_last_reading_on_errors(
    server: tuple[str, type[_Shelly]],
) -> None:
    url, handler = server
    handler.answer = (200, json.dumps({"id": 0, "total_act_power": 2.5}).encode())
    config = MeterConfig(
        id="shelly",
        role="grid",
        adapter="http",
        url=url,
        power="$.total_act_power",
        unit="kW",
        interval_s=0.1,
    )
    meter = HttpMeter(config, SystemClock())
    task = asyncio.create_task(meter.run())
    try:
        await _until(lambda: meter.latest is not None)
        assert meter.latest is not None
        assert meter.latest.power_w == 2500.0
        handler.answer = (500, b"oops")
        await _until(lambda: meter.error is not None)
        assert "500" in (meter.error or "")
        assert meter.latest.power_w == 2500.0  # kept, and so it goes stale
        handler.answer = (200, b"not json")
        await _until(lambda: "unreadable" in (meter.error or ""))
        handler.answer = (200, json.dumps({"total_act_power": -1.25}).encode())
        await _until(lambda: meter.latest is not None and meter.latest.power_w == -1250.0)
        assert meter.error is None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

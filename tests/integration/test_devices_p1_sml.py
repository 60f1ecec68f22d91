"""The DSMR P1 and SML meters against a peer on 127.0.0.1 that replays real telegrams and frames (the
shared folder's: dsmr_parser's reference telegrams, SmlLib's meter frames) as a P1 dongle or an IR head on
ser2net would: readings, a broken telegram or frame (the last reading kept, the error said), a silent
device (its reading goes stale), and a reconnect after the peer closes the link."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from chargeflow.clock import ManualClock, SystemClock
from chargeflow.devices.build import build_devices
from chargeflow.devices.dsmr import DsmrMeter
from chargeflow.devices.sml import SmlMeter
from chargeflow.devices.sml_frames import ESCAPE
from chargeflow.devices.stream import StreamMeter
from chargeflow.site.config import MeterConfig, MetersConfig, MqttBrokerConfig
from tests.dsmr_build import telegram
from tests.meter_data import MISSING_DSMR, MISSING_SML, dsmr_telegrams, sml_frames
from tests.sml_build import entry, get_list_response, meter_frame, transport, unsigned

CLOSE = b""  # queued: the peer closes the connection


@dataclass
class Replay:
    """A TCP peer that sends what the test gives it to the meter connected last (kept until one is)."""

    port: int = 0
    connections: int = 0
    writer: asyncio.StreamWriter | None = None
    pending: list[bytes] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writer = writer
        self.send(*self.pending)
        self.pending.clear()
        try:
            await reader.read()  # until the meter closes its end
        except ConnectionError:
            pass
        finally:
            if self.writer is writer:
                self.writer = None
            writer.close()

    def send(self, *chunks: bytes) -> None:
        for chunk in chunks:
            if self.writer is None or self.writer.is_closing():
                self.pending.append(chunk)
            elif chunk == CLOSE:
                self.writer.close()
                self.writer = None
            else:
                self.writer.write(chunk)


@pytest.fixture
async def peer() -> AsyncIterator[Replay]:
    replay = Replay()
    server = await asyncio.start_server(replay.serve, "127.0.0.1", 0)
    replay.port = server.sockets[0].getsockname()[1]
    try:
        yield replay
    finally:
        server.close()


@pytest.fixture
async def running() -> AsyncIterator[Callable[[StreamMeter], None]]:
    tasks: list[asyncio.Task[None]] = []
    yield lambda meter: tasks.append(asyncio.create_task(meter.run()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _until(predicate: Callable[[], Any], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out: {predicate.__doc__ or ''}"
        await asyncio.sleep(0.01)


def _config(adapter: str, port: int, **settings: Any) -> MeterConfig:
    return MeterConfig(id="grid", role="grid", adapter=adapter, host="127.0.0.1", port=port, **settings)


def _power(meter: StreamMeter) -> float | None:
    return meter.latest.power_w if meter.latest else None


def _has_power(meter: StreamMeter, power_w: float) -> bool:
    return _power(meter) == power_w


async def test_the_site_file_builds_dsmr_and_sml_meters() -> None:
    meters = (
        MeterConfig.model_validate(
            {"id": "p1", "role": "grid", "template": "dsmr", "serial_port": "/dev/ttyUSB0"}
        ),
        MeterConfig.model_validate(
            {"id": "ir", "role": "pv", "template": "sml-tcp", "host": "192.0.2.1", "port": 8899, "sign": -1}
        ),
    )
    config = MetersConfig(MqttBrokerConfig(), meters)
    p1, ir = build_devices(config, SystemClock())
    assert isinstance(p1, DsmrMeter)
    assert isinstance(ir, SmlMeter)
    assert (p1.config.dsmr_version, p1.default_baudrate, ir.source) == ("auto", 115200, "192.0.2.1:8899")
    with pytest.raises(ValueError, match="over TCP needs its port"):
        MeterConfig(id="p1", role="grid", adapter="dsmr", host="192.0.2.1")


async def test_dsmr_reference_telegrams_over_tcp_a_broken_one_and_a_reconnect(
    peer: Replay, running: Callable[[StreamMeter], None]
) -> None:
    telegrams = dsmr_telegrams()
    if "TELEGRAM_V5" not in telegrams:
        pytest.skip(MISSING_DSMR)
    v5 = telegrams["TELEGRAM_V5"].encode()
    meter = DsmrMeter(_config("dsmr", peer.port), SystemClock(), retry_s=0.05)
    running(meter)
    peer.send(v5[:50], v5[50:])  # in two pieces, as a serial bridge sends them
    await _until(lambda: meter.latest is not None)
    assert meter.version == "5"
    assert _power(meter) == 244.0
    assert meter.latest is not None
    assert meter.latest.current_a == (0.48, 0.44, 0.86)
    first = meter.latest

    peer.send(v5.replace(b"1-0:1.7.0(00.244", b"1-0:1.7.0(09.244"))  # one digit changed: its CRC fails
    await _until(lambda: meter.error is not None)
    assert "CRC" in (meter.error or "")
    assert meter.latest is first  # kept: it goes stale by its age

    peer.send(v5[:300], v5[:300])  # a telegram cut by the next one (which waits for its end)
    await _until(lambda: "cut telegram" in (meter.error or ""))
    peer.send(v5)
    await _until(lambda: meter.error is None)
    assert meter.latest is not first

    peer.send(CLOSE)
    await _until(lambda: peer.connections == 2)
    peer.send(telegram(0.5, 2.5).encode())
    await _until(lambda: _power(meter) == pytest.approx(-2000.0))


async def test_each_dsmr_variant_over_tcp(peer: Replay, running: Callable[[StreamMeter], None]) -> None:
    telegrams = dsmr_telegrams()
    if "TELEGRAM_FLUVIUS_V171_ALT" not in telegrams:
        pytest.skip(MISSING_DSMR)
    meter = DsmrMeter(_config("dsmr", peer.port, dsmr_version="5B"), SystemClock())
    running(meter)
    peer.send(telegrams["TELEGRAM_FLUVIUS_V171_ALT"].encode())
    await _until(lambda: meter.latest is not None)
    assert _power(meter) == 338.0


async def test_a_silent_dsmr_meter_goes_stale_and_is_reconnected(
    peer: Replay, running: Callable[[StreamMeter], None]
) -> None:
    meter = DsmrMeter(_config("dsmr", peer.port, stale_after_s=0.3), SystemClock(), retry_s=0.05)
    running(meter)
    peer.send(telegram(1.2).encode())
    await _until(lambda: meter.latest is not None)
    await _until(lambda: "silent" in (meter.error or ""))
    assert meter.latest is not None
    age = (SystemClock().now() - meter.latest.at).total_seconds()
    assert age >= meter.config.stale_after_s  # the site meter will not use it
    await _until(lambda: peer.connections >= 2)  # a half-open link is opened again
    peer.send(telegram(0.7).encode())
    await _until(lambda: _power(meter) == 700.0)
    assert meter.error is None


async def test_dsmr_meter_retries_a_peer_that_is_not_there(running: Callable[[StreamMeter], None]) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    meter = DsmrMeter(_config("dsmr", port), SystemClock(), retry_s=0.05)
    running(meter)
    await _until(lambda: "cannot connect" in (meter.error or ""))
    assert meter.latest is None


async def test_sml_real_frames_over_tcp_a_flipped_byte_a_cut_and_a_reconnect(
    peer: Replay, running: Callable[[StreamMeter], None]
) -> None:
    frames = [f for f in sml_frames() if f.data.startswith(ESCAPE)]
    if not frames:
        pytest.skip(MISSING_SML)
    meter = SmlMeter(_config("sml", peer.port), SystemClock(), retry_s=0.05)
    running(meter)
    with_power = {1: 137.0, 3: 927.0, 4: 130.0, 6: 188.0}  # Holley, EMH, Iskra, Holley with Kermit CRCs
    for index, power_w in with_power.items():
        data = frames[index].data
        peer.send(b"\x00\xff" + data[:33], data[33:])
        await _until(partial(_has_power, meter, power_w))
    assert meter.latest is not None
    assert meter.latest.current_a == (0.69, 0.21, 0.26)
    kept = meter.latest

    flipped = bytearray(frames[3].data)
    flipped[100] ^= 0x01
    peer.send(bytes(flipped))
    await _until(lambda: "wrong checksum" in (meter.error or ""))
    peer.send(frames[3].data[:120] + frames[4].data[:-1])  # cut, then one short of its checksum
    await _until(lambda: "cut frame" in (meter.error or ""))
    assert meter.latest is kept

    peer.send(CLOSE)
    await _until(lambda: peer.connections == 2)
    peer.send(meter_frame(-3200))
    await _until(lambda: _power(meter) == -3200.0)
    assert meter.error is None


async def test_an_sml_meter_without_power_reads_it_from_its_energy(
    peer: Replay, running: Callable[[StreamMeter], None]
) -> None:
    """A meter not unlocked with its PIN sends its energy registers only (SmlLib's DZG frame)."""
    frames = sml_frames()
    if not frames:
        pytest.skip(MISSING_SML)
    clock = ManualClock(datetime(2026, 12, 7, 12, 0, tzinfo=UTC))
    meter = SmlMeter(_config("sml", peer.port), clock)
    running(meter)
    peer.send(frames[0].data)  # 1.8.0 = 13 391 000 Wh
    await _until(lambda: meter._energy is not None)
    for seconds, import_wh in ((5, 13_391_010), (60, 13_391_050)):  # frames of our own from here on
        clock.advance(timedelta(seconds=seconds))
        peer.send(transport(get_list_response(entry("1-0:1.8.0*255", 30, 0, unsigned(import_wh, 8)))))
        await asyncio.sleep(0.1)
        if seconds < meter.energy_window_s:
            assert meter.latest is None  # not over a few seconds: the register counts whole Wh
    await _until(lambda: meter.latest is not None)
    assert _power(meter) == pytest.approx(50 * 3600 / 65)


async def test_a_silent_sml_meter_goes_stale(peer: Replay, running: Callable[[StreamMeter], None]) -> None:
    meter = SmlMeter(_config("sml", peer.port, stale_after_s=0.3, sign=-1), SystemClock(), retry_s=0.05)
    running(meter)
    peer.send(meter_frame(800))
    await _until(lambda: meter.latest is not None)
    assert _power(meter) == -800.0  # sign -1: a meter that counts the other way
    await _until(lambda: "silent" in (meter.error or ""))
    assert meter.latest is not None
    assert (SystemClock().now() - meter.latest.at).total_seconds() >= 0.3


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="a pseudo-terminal stands in for the serial port")
async def test_dsmr_on_a_serial_port(running: Callable[[StreamMeter], None]) -> None:
    """The serial path (serialx) on a pseudo-terminal, the test writing on its other end as a P1 cable."""
    master, slave = os.openpty()
    try:
        config = MeterConfig(id="grid", role="grid", adapter="dsmr", serial_port=os.ttyname(slave))
        meter = DsmrMeter(config, SystemClock(), retry_s=0.05)
        running(meter)
        await _until(lambda: meter.connections == 1)
        os.write(master, telegram(1.5).encode())
        await _until(lambda: meter.latest is not None)
        assert _power(meter) == 1500.0
    finally:
        os.close(master)
        os.close(slave)

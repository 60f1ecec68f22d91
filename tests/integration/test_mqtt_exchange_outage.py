"""The CSM↔EMS exchange over a broker that goes down and comes back: a private Mosquitto on a free loopback
port, killed and started again on the same port. While it is away the CSM's last grant runs out and its
stations go to their safe limit; when it is back both sides connect again by themselves and the grant
returns. Each outage is logged once per side, not once per step."""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import socket
from asyncio.subprocess import DEVNULL
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import timedelta

import pytest

from chargeflow.csm.smart_charging import ChargingStep, SmartCharging, SmartChargingConfig
from chargeflow.ems.service import EmsConfig, EmsService
from chargeflow.protocols.mqtt.exchange import MqttExchange, MqttSettings
from tests.unit.test_control_services import SITE, FakeControl, FakeMeter, Rig

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Broker:
    """A Mosquitto of the test's own, to stop and start without touching the shared one."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            self.binary, "-p", str(self.port), stdout=DEVNULL, stderr=DEVNULL
        )
        await _until(lambda: _listening(self.port), 5.0)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await asyncio.wait_for(self.process.wait(), 5.0)


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    if MOSQUITTO is None:
        pytest.skip("no mosquitto binary to start a private broker with")
    b = Broker(MOSQUITTO, _free_port())
    yield b
    await b.kill()


async def _until(condition: Callable[[], bool], timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, f"not within {timeout_s} s"
        await asyncio.sleep(0.02)


class BusRig(Rig):
    """The CSM's smart charging and the EMS, each with its own exchange over the private broker."""

    def attach(self, csm_bus: MqttExchange, ems_bus: MqttExchange) -> None:
        self.csm_bus, self.ems_bus = csm_bus, ems_bus
        self.control = FakeControl()
        config = SmartChargingConfig(step_s=10, safe_current_a=6.0, margin_pct=0.0)
        self.csm = SmartCharging(SITE, self.repo, csm_bus, self.control, self.clock, config, self.meter)
        self.ems = EmsService(SITE, FakeMeter(self.clock), ems_bus, self.clock, EmsConfig(step_s=10))

    async def bus_step(self) -> ChargingStep:
        """One step with each message's hop through the broker awaited, where the broker is there."""
        now = self.clock.now()
        await self.csm.publish_demand()
        if self.csm_bus.connected:
            await _until(lambda: _issued(self.ems_bus.latest_demand(SITE.id)) == now, 5.0)
        await self.ems.step()
        if self.ems_bus.connected:
            await _until(lambda: _issued(self.csm_bus.latest_grant(SITE.id)) == now, 5.0)
        step = await self.csm.apply()
        self.clock.advance(timedelta(seconds=10))
        return step


def _issued(message: object) -> object:
    validity = getattr(message, "validity", None)
    return validity.issued_at if validity is not None else None


@pytest.fixture
async def rig(broker: Broker) -> AsyncIterator[BusRig]:
    await broker.start()
    settings = MqttSettings(
        port=broker.port,
        prefix=f"chargeflow-test-{secrets.token_hex(4)}",
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )
    async with AsyncExitStack() as stack:
        csm_bus = await stack.enter_async_context(MqttExchange.connect(settings, SITE.id))
        ems_bus = await stack.enter_async_context(MqttExchange.connect(settings, SITE.id))
        rig = BusRig()
        rig.attach(csm_bus, ems_bus)
        yield rig


async def test_a_lost_broker_brings_the_safe_limit_and_its_return_the_grant(
    rig: BusRig, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chargeflow")
    await rig.start("cp1")
    step = await rig.bus_step()
    assert step.fallback is None
    assert step.granted_w is not None
    assert step.limits[0].current_a > 6.0

    await broker.kill()
    await _until(lambda: not rig.csm_bus.connected and not rig.ems_bus.connected, 5.0)
    steps = [await rig.bus_step() for _ in range(5)]
    # the last grant holds its validity (3 steps of 10 s from its issue), then the safe limit applies
    assert [s.fallback for s in steps] == [None, None] + ["fallback_no_valid_grant"] * 3
    assert [lim.current_a for lim in steps[-1].limits] == [6.0]
    assert rig.csm_bus.dropped == 5  # every demand published meanwhile, dropped at once
    assert rig.ems_bus.dropped == 2  # the EMS grants while the CSM's last demand holds

    await broker.start()  # the same port: both sides find it again by themselves
    await _until(lambda: rig.csm_bus.connected and rig.ems_bus.connected, 10.0)
    step = await rig.bus_step()
    assert step.fallback is None
    assert step.limits[0].current_a > 6.0
    assert rig.csm.events[-1].endswith("the grant is back in force (fallback_no_valid_grant ended)")

    lost = [r for r in caplog.records if "lost the MQTT broker" in r.getMessage()]
    back = [r for r in caplog.records if "is back after" in r.getMessage()]
    assert len(lost) == 2  # one per side, however many steps the outage lasted
    assert len(back) == 2
    assert (rig.csm_bus.outages, rig.ems_bus.outages) == (1, 1)


async def test_the_first_connection_must_succeed(broker: Broker) -> None:
    settings = MqttSettings(port=broker.port, timeout_s=2.0)  # nothing listens there yet
    with pytest.raises(Exception, match=r"(?i)refused|connect"):
        async with MqttExchange.connect(settings, SITE.id):
            pass

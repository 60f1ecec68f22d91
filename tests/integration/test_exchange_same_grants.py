"""The exchange's transport changes nothing: the same site, sessions and simulated clock give the same
grants and the same per-station limits, step by step, whether the CSM and the EMS share an
``InMemoryExchange`` or talk across the local Mosquitto (each with its own ``MqttExchange``), as
``serve --ems mqtt://…`` and ``chargeflow ems`` do."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiomqtt
import pytest

from chargeflow.clock import ManualClock
from chargeflow.csm import transactions
from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import MeterSample, StartRequest
from chargeflow.csm.service import CsmConfig
from chargeflow.csm.smart_charging import SmartChargingConfig
from chargeflow.ems.service import EmsConfig
from chargeflow.exchange import ExchangeBus, InMemoryExchange, PowerDemand, PowerGrant
from chargeflow.protocols.mqtt.exchange import MqttExchange, MqttSettings
from chargeflow.protocols.ocpp.server import OcppServerConfig
from chargeflow.runtime.control import SiteControl, build_site_control
from chargeflow.store.memory import MemoryRepository
from tests.unit.test_control_services import SITE, T0, FakeMeter

STEPS = 12


@dataclass(frozen=True)
class Observed:
    """What one step decided: the grant the CSM holds, and what it made of it."""

    grant: PowerGrant | None
    ems_reason: str | None
    granted_w: float | None
    fallback: str | None
    limits: tuple[tuple[str, int, int, float, str], ...]


async def _hop(latest: Callable[[], PowerDemand | PowerGrant | None], issued_at: datetime) -> None:
    """Wait until the message issued at ``issued_at`` has crossed the broker (milliseconds on loopback)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5.0
    while (message := latest()) is None or message.validity.issued_at != issued_at:
        assert loop.time() < deadline, "the broker's hop took longer than 5 s"
        await asyncio.sleep(0.005)


async def _run(csm_bus: ExchangeBus, ems_bus: ExchangeBus, paced: bool) -> list[Observed]:
    """The same script of sessions, preferences, draws and building loads on a fresh site."""
    clock = ManualClock(T0)
    meter = FakeMeter(clock)
    repo = MemoryRepository()
    control: SiteControl = build_site_control(
        SITE,
        repo,
        clock,
        csm_bus,
        ems_bus,
        meter,
        CsmConfig(auto_register=True),
        OcppServerConfig(host="127.0.0.1", port=0),
        SmartChargingConfig(step_s=10, safe_current_a=6.0),
        EmsConfig(step_s=10),
    )
    assert control.ems is not None

    async def start(station: str, evse: int) -> int:
        request = StartRequest(station, evse, "tag", 1000, clock.now())
        return (await repo.start_transaction(request, transactions.from_start(request))).transaction.id

    def draw(station: str, evse: int, amps: float) -> None:
        samples = [MeterSample(clock.now(), str(amps), "Current.Import", f"L{p}") for p in (1, 2, 3)]
        control.charging.live.observe(station, evse, samples)

    seen = []
    for i in range(STEPS):
        if i == 0:
            await start("cp1", 1)
        if i == 2:
            tx = await start("cp2", 2)
            control.charging.set_preferences(tx, Preferences(8_000, 20_000, clock.now() + timedelta(hours=1)))
        if i == 4:
            meter.consumption_w = 32_000.0  # the building takes most of the grid connection: the ESS helps
        if i == 6:
            draw("cp1", 1, 9.5)
        if i == 8:
            meter.consumption_w = 4_000.0
        now = clock.now()
        await control.charging.publish_demand()
        if paced:  # across the broker: wait for each message's hop before the next actor acts
            await _hop(lambda: ems_bus.latest_demand(SITE.id), now)
        decision = await control.ems.step()
        if paced and decision.published:
            await _hop(lambda: csm_bus.latest_grant(SITE.id), now)
        step = await control.charging.apply()
        limits = tuple(
            (x.station_id, x.evse_id, x.transaction_id, x.current_a, x.reason) for x in step.limits
        )
        seen.append(
            Observed(csm_bus.latest_grant(SITE.id), decision.reason, step.granted_w, step.fallback, limits)
        )
        clock.advance(timedelta(seconds=10))
    return seen


async def test_the_same_site_gets_the_same_grants_and_limits_in_memory_and_over_mqtt() -> None:
    bus = InMemoryExchange()
    in_memory = await _run(bus, bus, paced=False)
    settings = MqttSettings(prefix=f"chargeflow-test-{secrets.token_hex(4)}", timeout_s=3.0)
    async with AsyncExitStack() as stack:
        try:
            csm_bus = await stack.enter_async_context(MqttExchange.connect(settings, SITE.id))
            ems_bus = await stack.enter_async_context(MqttExchange.connect(settings, SITE.id))
        except (aiomqtt.MqttError, OSError) as err:
            pytest.skip(f"no MQTT broker on 127.0.0.1:1883 ({err})")
        over_mqtt = await _run(csm_bus, ems_bus, paced=True)
        assert (csm_bus.rejected, ems_bus.rejected, csm_bus.dropped, ems_bus.dropped) == (0, 0, 0, 0)
    for i, (memory, mqtt) in enumerate(zip(in_memory, over_mqtt, strict=True)):
        assert mqtt == memory, f"step {i}"
    # the script exercises the split, not just one number: grants and limits change along it
    assert len({o.granted_w for o in in_memory}) >= 3
    assert len({o.limits for o in in_memory}) >= 3
    assert all(o.fallback is None for o in in_memory)

"""``chargeflow ems``: the EMS alone, for a CSM that reaches it over MQTT (``serve --ems mqtt://…``).

Only the exchange's messages cross between the two (P_needed and P_wished in, P_granted out, each with its
validity), so that another vendor's EMS or CSM can take either role. The EMS reads the site's own meters;
where the site file names none, the building is taken at its declared peak, as ``serve`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from chargeflow.clock import SystemClock
from chargeflow.ems.service import EmsConfig, EmsService
from chargeflow.protocols.mqtt.exchange import MqttExchange, MqttSettings
from chargeflow.runtime.devices import site_meter
from chargeflow.site.config import load_site


async def run_ems(
    site_file: Path, mqtt: MqttSettings, step_s: float, ready: Callable[[EmsService], None] | None = None
) -> None:
    """Run the EMS until cancelled."""
    site = load_site(site_file)
    clock = SystemClock()
    async with contextlib.AsyncExitStack() as stack:
        meter = await stack.enter_async_context(site_meter(site_file, site, clock, lambda: 0.0))
        bus = await stack.enter_async_context(MqttExchange.connect(mqtt, site.id))
        ems = EmsService(site, meter.meter, bus, clock, EmsConfig(step_s=step_s), meter.ess)
        if ready is not None:
            ready(ems)
        await ems.run(asyncio.Event())

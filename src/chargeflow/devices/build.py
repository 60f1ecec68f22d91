"""The site's devices from its file's ``meters:``."""

from __future__ import annotations

from collections.abc import Callable

from chargeflow.clock import Clock
from chargeflow.devices.base import Device
from chargeflow.devices.dsmr import DsmrMeter
from chargeflow.devices.http import HttpMeter
from chargeflow.devices.mqtt import MqttMeter
from chargeflow.devices.sml import SmlMeter
from chargeflow.devices.sunspec import SunSpecDevice
from chargeflow.site.config import MetersConfig


def build_devices(
    config: MetersConfig, clock: Clock, on_reading: Callable[[], None] | None = None
) -> list[Device]:
    devices: list[Device] = []
    for meter in config.meters:
        if meter.adapter == "mqtt":
            devices.append(MqttMeter(meter, config.broker, clock, on_reading))
        elif meter.adapter == "http":
            devices.append(HttpMeter(meter, clock, on_reading))
        elif meter.adapter == "dsmr":
            devices.append(DsmrMeter(meter, clock, on_reading))
        elif meter.adapter == "sml":
            devices.append(SmlMeter(meter, clock, on_reading))
        elif meter.adapter == "sunspec":
            devices.append(SunSpecDevice(meter, clock, on_reading))
        else:
            raise ValueError(f"meter {meter.id}: no {meter.adapter} adapter in this build")
    return devices

"""The MQTT templates against the local Mosquitto: a Tasmota SENSOR message and a Shelly Pro 3EM status
message, as those devices publish them, read by the meter a template makes."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import aiomqtt
import pytest

from chargeflow.clock import SystemClock
from chargeflow.devices.mqtt import MqttMeter
from chargeflow.site.config import MeterConfig, MqttBrokerConfig, parse_meters
from tests.waiting import mqtt_broker_up

# A Tasmota energy plug's tele message (Tasmota's SENSOR format, ENERGY block)
TASMOTA: dict[str, Any] = {
    "Time": "2026-12-07T21:14:03",
    "ENERGY": {
        "TotalStartTime": "2026-01-03T10:11:12",
        "Total": 1532.114,
        "Yesterday": 4.211,
        "Today": 2.087,
        "Period": 3,
        "Power": 2310,
        "ApparentPower": 2336,
        "ReactivePower": 346,
        "Factor": 0.99,
        "Voltage": 231,
        "Current": 10.112,
    },
}
# A Shelly Pro 3EM's em:0 status (Shelly's EM.GetStatus fields), as its generic status update publishes it
SHELLY: dict[str, Any] = {
    "id": 0,
    "a_current": 12.05, "a_voltage": 230.2, "a_act_power": 2702.4, "a_aprt_power": 2774.0, "a_pf": 0.97,
    "b_current": 3.11, "b_voltage": 231.0, "b_act_power": 689.6, "b_aprt_power": 718.0, "b_pf": 0.96,
    "c_current": 0.42, "c_voltage": 229.8, "c_act_power": -61.2, "c_aprt_power": 96.5, "c_pf": -0.63,
    "n_current": None,
    "total_current": 15.58,
    "total_act_power": 3330.8,
    "total_aprt_power": 3588.5,
    "user_calibrated_phase": [],
}  # fmt: skip


def meter(entry: dict[str, Any]) -> MeterConfig:
    site = {
        "grid": {"max_import_w": 20_000, "max_export_w": 0},
        "circuits": [{"id": "main", "max_current_a": 32}],
        "meters": [{"id": "m", "role": "grid", **entry}],
    }
    return parse_meters(site).meters[0]


async def read(config: MeterConfig, message: dict[str, Any]) -> MqttMeter:
    device = MqttMeter(config, MqttBrokerConfig(), SystemClock())
    task = asyncio.create_task(device.run())
    try:
        await asyncio.wait_for(device.subscribed.wait(), 10)
        assert config.topic is not None
        async with aiomqtt.Client("127.0.0.1", 1883) as client:
            for _ in range(50):  # until the subscription is in force at the broker
                await client.publish(config.topic, json.dumps(message))
                await asyncio.sleep(0.1)
                if device.latest is not None:
                    break
        return device
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture(autouse=True)
def _needs_broker() -> None:
    if not mqtt_broker_up():
        pytest.skip("no MQTT broker on 127.0.0.1:1883 (start mosquitto)")


async def test_a_tasmota_plug_by_its_template() -> None:
    device = await read(meter({"template": "tasmota", "device": f"plug-{secrets.token_hex(3)}"}), TASMOTA)
    assert device.latest is not None
    assert device.latest.power_w == 2310.0
    assert device.latest.current_a is None


async def test_a_shelly_pro_3em_by_its_template_with_each_phases_current() -> None:
    prefix = f"test-{secrets.token_hex(3)}/shellypro3em-c8f09e8a1b2c"
    device = await read(meter({"template": "shelly-pro-3em", "device": prefix}), SHELLY)
    assert device.latest is not None
    assert device.latest.power_w == pytest.approx(3330.8)
    assert device.latest.current_a == pytest.approx((12.05, 3.11, 0.42))

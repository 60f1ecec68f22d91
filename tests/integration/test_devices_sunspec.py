"""The SunSpec adapter against pymodbus's own Modbus TCP server serving a SunSpec map that pysunspec2 built
from its model definitions: discovery, meters, inverters and batteries with their scale factors, points a
device does not implement, a battery's setpoint written to its registers, and a device that answers
exceptions, goes silent, garbles its frames or goes away and comes back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from chargeflow.clock import SystemClock
from chargeflow.devices.build import build_devices
from chargeflow.devices.ess import DeviceEss
from chargeflow.devices.sunspec import ModbusAnswerError, SunSpecDevice
from chargeflow.devices.sunspec_models import SunSpecError
from chargeflow.site.config import MeterConfig, MetersConfig, MqttBrokerConfig
from tests.integration.sunspec_peer import SunSpecPeer, model

COMMON = {"Mn": "Chargeflow tests", "Md": "SunSpec peer", "SN": "0001"}


def _config(peer: SunSpecPeer, role: str = "grid", **more: Any) -> MeterConfig:
    return MeterConfig.model_validate(
        {
            "id": role,
            "role": role,
            "adapter": "sunspec",
            "host": "127.0.0.1",
            "port": peer.port,
            "unit_id": peer.unit_id,
            "interval_s": 0.1,
            **more,
        }
    )


async def _until(predicate: Callable[[], object], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@asynccontextmanager
async def _serving(peer: SunSpecPeer) -> AsyncIterator[SunSpecPeer]:
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@asynccontextmanager
async def _running(device: SunSpecDevice) -> AsyncIterator[SunSpecDevice]:
    task = asyncio.create_task(device.run())
    try:
        yield device
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _meter(**points: float | str) -> Any:
    return model(203, W_SF=-1, A_SF=-2, TotWh_SF=0, **points)


@pytest.mark.parametrize("base", [40000, 0, 50000])
async def test_a_meter_is_found_at_each_base_and_read_with_its_scale_factors(base: int) -> None:
    meter = _meter(W_c=1234.5, AphA_c=10.5, AphB_c=3.25, AphC_c=0.0, TotWhImp=4_000_123_456)
    async with _serving(SunSpecPeer([model(1, **COMMON), meter], base=base)) as peer:
        device = SunSpecDevice(_config(peer), SystemClock())
        async with _running(device):
            await _until(lambda: device.latest is not None)
            assert device.models == [1, 203]
            assert device.error is None
            assert device.latest is not None
            assert device.latest.power_w == pytest.approx(1234.5)
            assert device.latest.current_a == pytest.approx((10.5, 3.25, 0.0))
            assert device.values is not None
            assert device.values.import_wh == 4_000_123_456  # a 32-bit accumulator
            assert device.values.export_wh is None  # not implemented by this meter

            peer.update(203, W_c=-2500.0)  # SunSpec's meter: export is negative
            await _until(lambda: device.latest is not None and device.latest.power_w < 0)
            assert device.latest.power_w == pytest.approx(-2500.0)


async def test_a_meter_that_counts_the_other_way_is_turned_round_by_its_sign() -> None:
    async with _serving(SunSpecPeer([model(1, **COMMON), _meter(W_c=800.0)])) as peer:
        device = SunSpecDevice(_config(peer, sign=-1), SystemClock())
        async with _running(device):
            await _until(lambda: device.latest is not None)
            assert device.latest is not None
            assert device.latest.power_w == pytest.approx(-800.0)


async def test_points_not_implemented_give_no_currents_and_no_power_gives_no_reading() -> None:
    # AphC is 0x8000 (not implemented) on this meter: no per-phase currents, the power still counts
    meter = _meter(W_c=500.0, AphA_c=2.0, AphB_c=2.0)
    async with _serving(SunSpecPeer([model(1, **COMMON), meter])) as peer:
        device = SunSpecDevice(_config(peer), SystemClock())
        async with _running(device):
            await _until(lambda: device.latest is not None)
            assert device.latest is not None
            assert device.latest.current_a is None
            assert device.latest.power_w == pytest.approx(500.0)

    # W's scale factor not implemented: no power, so no reading at all
    meter = model(203, W=500)
    async with _serving(SunSpecPeer([model(1, **COMMON), meter])) as peer:
        device = SunSpecDevice(_config(peer), SystemClock())
        async with _running(device):
            await _until(lambda: device.error is not None)
            assert "no power" in str(device.error)
            assert device.latest is None


@pytest.mark.parametrize(
    "inverter",
    [
        lambda: model(103, W_SF=1, W_c=4560, WH_SF=0, WH=12345678),
        lambda: model(101, W_SF=0, W_c=4560),
        lambda: model(113, W=4560.0, WH=12345678.0),
        lambda: model(701, W_SF=0, W_c=4560, TotWh_SF=0, TotWhInj=12345678),
    ],
    ids=["103", "101", "113-float", "701"],
)
async def test_a_pv_inverter_gives_its_ac_power(inverter: Callable[[], Any]) -> None:
    async with _serving(SunSpecPeer([model(1, **COMMON), inverter()])) as peer:
        device = SunSpecDevice(_config(peer, "pv"), SystemClock())
        async with _running(device):
            await _until(lambda: device.latest is not None)
            assert device.latest is not None
            assert device.latest.power_w == pytest.approx(4560.0)


def _storage() -> Any:
    return model(
        124,
        WChaMax_SF=0,
        WChaMax_c=5000,
        ChaState_SF=-1,
        ChaState_c=64.5,
        InOutWRte_SF=-2,
        OutWRte=0,
        InWRte=0,
        StorCtl_Mod=0,
        InOutWRte_RvrtTms=0,
    )


async def test_a_battery_inverter_with_basic_storage_gives_soc_power_and_takes_setpoints() -> None:
    battery_inverter = model(103, W_SF=0, W_c=-1500)  # charging: the inverter takes AC power
    async with _serving(SunSpecPeer([model(1, **COMMON), battery_inverter, _storage()])) as peer:
        device = SunSpecDevice(_config(peer, "battery"), SystemClock(), revert_s=45)
        async with _running(device):
            await _until(lambda: device.latest is not None)
            assert device.latest is not None
            assert device.latest.soc_pct == pytest.approx(64.5)
            assert device.latest.power_w == pytest.approx(-1500.0)
            assert device.values is not None
            assert device.values.charge_max_w == pytest.approx(5000.0)
            assert device.writable

            await device.set_discharge(2500.0)
            written = peer.read_back(124)
            assert written.OutWRte.cvalue == pytest.approx(50.0)  # at most 50 % of WChaMax out
            assert written.InWRte.cvalue == pytest.approx(-50.0)  # and at least as much: forced
            assert written.StorCtl_Mod.value == 3  # both limits in force
            assert written.InOutWRte_RvrtTms.value == 45

            await device.set_discharge(-1000.0)
            written = peer.read_back(124)
            assert written.OutWRte.cvalue == pytest.approx(-20.0)
            assert written.InWRte.cvalue == pytest.approx(20.0)

            await device.set_discharge(9000.0)  # past the battery's maximum: its maximum
            assert peer.read_back(124).OutWRte.cvalue == pytest.approx(100.0)


async def test_an_802_battery_gives_soc_and_power_and_takes_no_setpoint() -> None:
    battery = model(
        802, SoC_SF=0, SoC=81, W_SF=1, W_c=-3200, WChaDisChaMax_SF=1, WChaRteMax_c=6000, WDisChaRteMax_c=7000
    )
    async with _serving(SunSpecPeer([model(1, **COMMON), battery])) as peer:
        device = SunSpecDevice(_config(peer, "battery"), SystemClock())
        async with _running(device):
            await _until(lambda: device.latest is not None)
            assert device.latest is not None
            assert device.latest.soc_pct == pytest.approx(81.0)
            assert device.latest.power_w == pytest.approx(-3200.0)
            assert device.values is not None
            assert (device.values.charge_max_w, device.values.discharge_max_w) == (6000.0, 7000.0)
            assert not device.writable
            with pytest.raises(SunSpecError):
                await device.set_discharge(1000.0)


async def test_a_refused_write_is_an_error() -> None:
    async with _serving(SunSpecPeer([model(1, **COMMON), model(103, W_SF=0, W_c=0), _storage()])) as peer:
        device = SunSpecDevice(_config(peer, "battery", interval_s=5.0), SystemClock())
        async with _running(device):
            await _until(lambda: device.latest is not None)
            peer.behaviour = "exception"
            with pytest.raises(ModbusAnswerError):
                await device.set_discharge(1000.0)


async def test_a_device_that_answers_exceptions_has_an_error_and_no_reading() -> None:
    async with _serving(SunSpecPeer([model(1, **COMMON), _meter(W_c=100.0)])) as peer:
        peer.behaviour = "exception"
        device = SunSpecDevice(_config(peer), SystemClock())
        async with _running(device):
            await _until(lambda: device.error is not None)
            assert "no SunSpec map" in str(device.error)
            assert "exception 4 (DEVICE_FAILURE)" in str(device.error)
            assert device.latest is None
            peer.behaviour = "ok"
            await _until(lambda: device.latest is not None)
            assert device.error is None
            last = device.latest
            peer.behaviour = "exception"  # after a reading: it is kept, and goes stale
            await _until(lambda: device.error is not None)
            await asyncio.sleep(0.3)
            assert device.latest is last


async def test_a_silent_device_keeps_its_last_reading_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _serving(SunSpecPeer([model(1, **COMMON), _meter(W_c=100.0)])) as peer:
        device = SunSpecDevice(_config(peer), SystemClock(), timeout_s=0.3)
        async with _running(device):
            await _until(lambda: device.latest is not None)
            last = device.latest
            with caplog.at_level(logging.WARNING, logger="chargeflow.devices.base"):
                peer.behaviour = "silent"
                await _until(lambda: device.error is not None)
                await asyncio.sleep(2.0)  # several polls, each timing out
            assert device.latest is last
            warnings = [r for r in caplog.records if r.name == "chargeflow.devices.base"]
            assert len(warnings) == 1, [r.getMessage() for r in warnings]
            peer.behaviour = "ok"
            await _until(lambda: device.latest is not last, timeout_s=5.0)
            assert device.error is None


async def test_a_broken_frame_is_an_error_and_the_last_reading_is_kept() -> None:
    async with _serving(SunSpecPeer([model(1, **COMMON), _meter(W_c=100.0)])) as peer:
        device = SunSpecDevice(_config(peer), SystemClock(), timeout_s=0.5)
        async with _running(device):
            await _until(lambda: device.latest is not None)
            last = device.latest
            peer.behaviour = "garbled"
            await _until(lambda: device.error is not None)
            assert "registers" in str(device.error)
            await asyncio.sleep(0.3)
            assert device.latest is last
            peer.behaviour = "ok"
            await _until(lambda: device.error is None and device.latest is not last)


async def test_a_device_that_goes_away_and_comes_back_is_read_again() -> None:
    peer = SunSpecPeer([model(1, **COMMON), _meter(W_c=100.0)])
    await peer.start()
    device = SunSpecDevice(_config(peer), SystemClock(), timeout_s=0.5)
    try:
        async with _running(device):
            await _until(lambda: device.latest is not None)
            last = device.latest
            await peer.stop()
            await _until(lambda: device.error is not None)
            assert device.latest is last
            peer.update(203, W_c=-700.0)
            await peer.start()  # the same address, as a device restarting
            await _until(lambda: device.latest is not None and device.latest.power_w < 0, timeout_s=8.0)
            assert device.latest is not None
            assert device.latest.power_w == pytest.approx(-700.0)
            assert device.error is None
    finally:
        await peer.stop()


async def test_the_site_file_builds_a_sunspec_device() -> None:
    peer = SunSpecPeer([model(1, **COMMON), _meter(W_c=100.0)])
    config = MetersConfig(MqttBrokerConfig(), (_config(peer),))
    (device,) = build_devices(config, SystemClock())
    assert isinstance(device, SunSpecDevice)


async def test_the_ems_port_sets_a_writable_battery_and_leaves_another_to_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with _serving(SunSpecPeer([model(1, **COMMON), model(103, W_SF=0, W_c=0), _storage()])) as peer:
        device = SunSpecDevice(_config(peer, "battery"), SystemClock())
        ess = DeviceEss("battery", device)
        async with _running(device):
            await _until(lambda: device.latest is not None)
            await ess.set_discharge(-2500.0)  # the EMS's ``EssControl`` call: charge 2.5 kW
            assert peer.read_back(124).InWRte.cvalue == pytest.approx(50.0)
            assert ess.setpoint_w == -2500.0
            peer.behaviour = "exception"
            with caplog.at_level(logging.WARNING, logger="chargeflow.devices.ess"):
                await ess.set_discharge(1000.0)  # refused: logged, not raised into the EMS's step
                await ess.set_discharge(1000.0)
            assert ess.setpoint_w == -2500.0
            assert len([r for r in caplog.records if r.name == "chargeflow.devices.ess"]) == 1
            peer.behaviour = "silent"  # a battery that does not answer holds the EMS's step up no longer
            quick = DeviceEss("battery", device, timeout_s=0.5)
            started = time.monotonic()
            await quick.set_discharge(1000.0)
            assert time.monotonic() - started < 1.5
            assert quick.setpoint_w is None

    battery = model(802, SoC_SF=0, SoC=50, W_SF=0, W_c=0)
    async with _serving(SunSpecPeer([model(1, **COMMON), battery])) as peer:
        device = SunSpecDevice(_config(peer, "battery"), SystemClock())
        ess = DeviceEss("battery", device)
        async with _running(device):
            await _until(lambda: device.latest is not None)
            await ess.set_discharge(1000.0)  # no 124 model: nothing written, nothing raised
            assert ess.setpoint_w is None

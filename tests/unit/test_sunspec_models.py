"""SunSpec register images (pure): the model chain, not-implemented points of each type, scale factors, the
values each role takes and the registers a battery setpoint writes. The images are built with pysunspec2 from
its model definitions."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
import sunspec2.device as sunspec_device
from hypothesis import given
from hypothesis import strategies as st

from chargeflow.devices.sunspec_models import (
    MAX_READ,
    ModelBlock,
    SunSpecError,
    chain_step,
    decode,
    device_values,
    discharge_write,
    is_marker,
    needed_models,
    point_offset,
    read_spans,
    scaled,
)


def _model(model_id: int, **points: float | str) -> Any:
    m = sunspec_device.Model(model_id=model_id)
    for name, value in points.items():
        if name.endswith("_c"):
            m.points[name[:-2]].cvalue = value
        else:
            m.points[name].value = value
    return m


def _registers(m: Any) -> list[int]:
    data = m.get_mb()
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _points(model_id: int, **points: float | str) -> dict[str, float | int | None]:
    return decode(model_id, _registers(_model(model_id, **points)))


def test_the_marker_and_the_chain_of_models() -> None:
    assert is_marker([0x5375, 0x6E53])
    assert not is_marker([0x5375, 0x6E54])
    meter = _registers(_model(203))
    block, following = chain_step(40002, meter[:2])
    assert block == ModelBlock(203, 40002, 105)
    assert following == 40002 + 2 + 105
    assert chain_step(following, [0xFFFF, 0]) == (None, following)
    with pytest.raises(SunSpecError):
        chain_step(40002, [203])


@given(st.integers(0, 60000), st.integers(0, 1000))
def test_the_reads_of_a_model_cover_it_within_the_protocols_limit(address: int, length: int) -> None:
    spans = read_spans(ModelBlock(1, address, length))
    assert all(0 < count <= MAX_READ for _, count in spans)
    assert spans[0][0] == address
    assert sum(count for _, count in spans) == length + 2
    assert all(a + c == b for (a, c), (b, _) in pairwise(spans))


def test_points_not_implemented_are_none_for_each_type() -> None:
    # a fresh pysunspec2 model encodes every point as not implemented: int16 and sunssf 0x8000, uint16 and
    # enum16 0xFFFF, acc32 0, uint32 0xFFFFFFFF, float32 NaN
    meter = decode(203, _registers(_model(203)))
    assert (meter["W"], meter["W_SF"], meter["TotWhImp"]) == (None, None, None)
    battery = decode(802, _registers(_model(802)))
    assert (battery["SoC"], battery["NCyc"], battery["ChaSt"]) == (None, None, None)
    floats = decode(113, _registers(_model(113)))
    assert floats["W"] is None
    assert scaled(203, meter, "W") is None
    assert scaled(113, floats, "W") is None


def test_a_value_whose_scale_factor_is_not_implemented_is_not_used() -> None:
    points = _points(203, W=1234)
    assert points["W"] == 1234
    assert scaled(203, points, "W") is None


@pytest.mark.parametrize(("sf", "value"), [(-2, 12.34), (0, 1234.0), (2, 123400.0), (-1, -1234.5)])
def test_scale_factors(sf: int, value: float) -> None:
    points = _points(203, W_SF=sf, W_c=value)
    assert scaled(203, points, "W") == pytest.approx(value)


def test_32_bit_values() -> None:
    points = _points(203, TotWh_SF=1, TotWhImp=3_000_000_000, TotWhExp=70_000)
    assert scaled(203, points, "TotWhImp") == pytest.approx(30_000_000_000.0)
    assert scaled(203, points, "TotWhExp") == pytest.approx(700_000.0)
    assert scaled(113, _points(113, W=-12.5), "W") == pytest.approx(-12.5)


def test_a_model_whose_registers_are_not_its_own_is_refused() -> None:
    with pytest.raises(SunSpecError):
        decode(203, _registers(_model(201)))
    with pytest.raises(SunSpecError):
        decode(65000, [65000, 0])


def test_each_role_takes_its_models() -> None:
    meter = _points(203, W_SF=0, W_c=-300)
    inverter = _points(103, W_SF=0, W_c=2000)
    storage = _points(124, WChaMax_SF=0, WChaMax_c=4000, ChaState_SF=0, ChaState_c=55)
    assert device_values("grid", {203: meter, 103: inverter}).power_w == -300.0
    assert device_values("pv", {203: meter, 103: inverter}).power_w == 2000.0
    battery = device_values("battery", {103: inverter, 124: storage})
    assert (battery.power_w, battery.soc_pct, battery.charge_max_w) == (2000.0, 55.0, 4000.0)
    with pytest.raises(SunSpecError):
        device_values("battery", {203: meter})
    with pytest.raises(SunSpecError):
        device_values("pv", {203: meter})
    with pytest.raises(SunSpecError):
        device_values("grid", {103: inverter})
    found = [ModelBlock(1, 40002, 66), ModelBlock(103, 40070, 50), ModelBlock(124, 40122, 24)]
    assert [b.model_id for b in needed_models("battery", found)] == [103, 124]
    assert [b.model_id for b in needed_models("grid", found)] == []


def test_a_setpoint_is_both_rates_of_wchamax_and_both_limits_in_force() -> None:
    points = _points(124, WChaMax_SF=1, WChaMax_c=5000, InOutWRte_SF=-1, InOutWRte_RvrtTms=0)
    block = ModelBlock(124, 40100, 24)
    write = discharge_write(block, points, 1250.0, 30)
    assert write.rates_address == 40100 + point_offset(124, "OutWRte")
    assert write.rates == (250, (-250) & 0xFFFF)  # 25.0 % out at most, 25.0 % at least (InWRte = −25 %)
    assert write.mode == 3
    assert write.revert_address == 40100 + point_offset(124, "InOutWRte_RvrtTms")
    assert write.revert_s == 30
    charge = discharge_write(block, points, -5000.0, 30)
    assert charge.rates == ((-1000) & 0xFFFF, 1000)
    hold = discharge_write(block, points, 0.0, 30)
    assert hold.rates == (0, 0)
    beyond = discharge_write(block, points, 20000.0, 30)
    assert beyond.rates == (1000, (-1000) & 0xFFFF)


def test_a_setpoint_needs_wchamax_and_a_rate_scale_factor() -> None:
    block = ModelBlock(124, 40100, 24)
    with pytest.raises(SunSpecError):
        discharge_write(block, _points(124, InOutWRte_SF=0), 1000.0, 30)
    with pytest.raises(SunSpecError):
        discharge_write(block, _points(124, WChaMax_SF=0, WChaMax_c=5000), 1000.0, 30)
    with pytest.raises(SunSpecError):
        discharge_write(ModelBlock(802, 40100, 62), _points(802), 1000.0, 30)
    no_revert = discharge_write(block, _points(124, WChaMax_SF=0, WChaMax_c=5000, InOutWRte_SF=0), 1.0, 30)
    assert no_revert.revert_address is None


def test_a_model_cut_short_leaves_its_missing_points_unimplemented() -> None:
    registers = _registers(_model(203, W_SF=0, W_c=100))
    short = [203, 20, *registers[2:22]]  # a device whose 203 ends after 20 registers
    points = decode(203, short)
    assert scaled(203, points, "W") is None  # W lies beyond the 20 registers
    assert points["ID"] == 203

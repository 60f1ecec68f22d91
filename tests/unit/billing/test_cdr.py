"""CDRs from meter values: periods, parking rule, cuts where the tariff changes, exact energy, OCMF."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargeflow.billing.cdr import (
    FinishedSession,
    MeterDataError,
    MeterSample,
    build_cdr,
    cdr_json,
    energy_per_step,
    usage_from_samples,
)
from chargeflow.billing.pricing import CostKind

from .builders import comp, element, eur, tariff
from .ocmf_fixtures import key_pair, signed_reading

T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)  # a Monday
VIENNA = ZoneInfo("Europe/Vienna")


def minutes(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def samples(*points: tuple[float, int], current_a: float | None = None) -> tuple[MeterSample, ...]:
    return tuple(MeterSample(minutes(m), wh, current_a=current_a) for m, wh in points)


def session(end_min: float, points: tuple[MeterSample, ...], signed: tuple[str, ...] = ()) -> FinishedSession:
    return FinishedSession("s-1", "AT*CFL*E1", "04A2B3C4", T0, minutes(end_min), points, signed, "MS-0001")


START_ENERGY_PARKING = tariff(
    element(comp("FLAT", "0.50", "20")),
    element(comp("ENERGY", "0.25", "10")),
    element(comp("PARKING_TIME", "2.00", "20", step=900)),
    id="10",
)


def test_charging_then_parking_after_the_last_rise() -> None:
    s = session(
        160, samples((0, 1_000_000), (60, 1_011_000), (120, 1_020_000), (140, 1_020_000), (160, 1_020_000))
    )
    cdr = build_cdr("cdr-1", s, START_ENERGY_PARKING, VIENNA)
    periods = cdr.usage.periods
    assert [(p.start, int(p.energy_wh), int(p.charging_s), int(p.parking_s)) for p in periods] == [
        (minutes(0), 20_000, 7200, 0),
        (minutes(120), 0, 0, 2400),
    ]
    assert cdr.total_energy_wh == 20_000
    assert cdr.cost.total_cost == eur("7.00", "7.90")  # as the OCPI example: 40 minutes parked billed as 45


def test_a_pause_before_the_last_rise_is_charging_time() -> None:
    # Smart charging holds the EV at 0 W from 0:30 to 1:30; it is not parking.
    s = session(150, samples((0, 0), (30, 5000), (90, 5000), (120, 9000), (150, 9000)))
    usage = usage_from_samples(s.start, s.end, s.samples)
    assert [(int(p.charging_s), int(p.parking_s)) for p in usage.periods] == [(7200, 0), (0, 1800)]


def test_periods_are_cut_where_the_local_time_of_day_changes_the_price() -> None:
    t = tariff(element(comp("ENERGY", "0.30"), end_time="17:00"), element(comp("ENERGY", "0.20")))
    # 15:30 to 17:30 UTC is 16:30 to 18:30 in Vienna; the cut at 17:00 local falls between two samples.
    start = datetime(2024, 3, 4, 15, 30, tzinfo=UTC)
    points = (MeterSample(start, 0), MeterSample(start + timedelta(hours=2), 10_001))
    s = FinishedSession("s-2", "E1", "tok", start, start + timedelta(hours=2), points)
    cdr = build_cdr("cdr-2", s, t, VIENNA)
    assert [p.start for p in cdr.usage.periods] == [start, start + timedelta(minutes=30)]
    # 10001 Wh split at a quarter of the way, rounded down, so that the parts add up exactly.
    assert [p.energy_wh for p in cdr.usage.periods] == [2500, 7501]
    assert cdr.cost.total_cost.excl_vat == Decimal("0.75") + Decimal("1.5002")


def test_periods_are_cut_where_the_energy_threshold_is_reached() -> None:
    t = tariff(element(comp("ENERGY", "0.0"), max_kwh="1.0"), element(comp("ENERGY", "0.2"), min_kwh="1.0"))
    s = session(30, samples((0, 500), (30, 3500)))
    cdr = build_cdr("cdr-3", s, t, UTC)
    assert [p.energy_wh for p in cdr.usage.periods] == [1000, 2000]
    assert cdr.cost.total_cost == eur("0.40", None)


def test_duration_thresholds_cut_the_session() -> None:
    t = tariff(element(comp("ENERGY", "0.00"), max_duration=1800), element(comp("ENERGY", "0.25")))
    s = session(40, samples((0, 0), (40, 8000)))
    cdr = build_cdr("cdr-4", s, t, UTC)
    assert [p.energy_wh for p in cdr.usage.periods] == [6000, 2000]
    assert cdr.cost.total_cost.excl_vat == Decimal("0.50")


def test_current_restrictions_split_at_every_sample_and_carry_the_current() -> None:
    t = tariff(element(comp("TIME", "1.00"), max_current="32"), element(comp("TIME", "2.00")))
    points = (
        MeterSample(minutes(0), 0, current_a=16),
        MeterSample(minutes(30), 5000, current_a=48),
        MeterSample(minutes(60), 15000, current_a=48),
    )
    cdr = build_cdr("cdr-5", session(60, points), t, UTC)
    assert [p.current_a for p in cdr.usage.periods] == [16, 48]
    assert cdr.cost.cost_of(CostKind.TIME).excl_vat == Decimal("0.5") + Decimal("1.0")


def test_meter_data_that_cannot_make_a_cdr() -> None:
    with pytest.raises(MeterDataError, match=r"samples\[2\].energy_wh: the register runs backwards"):
        usage_from_samples(T0, minutes(60), samples((0, 10), (30, 20), (60, 15)))
    with pytest.raises(MeterDataError, match=r"samples\[1\]: not after"):
        usage_from_samples(T0, minutes(60), samples((0, 10), (0, 20)))
    with pytest.raises(MeterDataError, match="within the session"):
        usage_from_samples(T0, minutes(60), samples((0, 10), (90, 20)))


def test_signed_meter_data_pass_through_unchanged_and_are_verified() -> None:
    private, public = key_pair()
    signed = (
        signed_reading(private, "1000.000", "B", "2024-03-04T10:00:00,000+0000 S"),
        signed_reading(private, "1020.000", "E", "2024-03-04T12:00:00,000+0000 S"),
    )
    s = session(160, samples((0, 1_000_000), (120, 1_020_000), (160, 1_020_000)), signed)
    verified = cdr_json(build_cdr("cdr-6", s, START_ENERGY_PARKING, UTC, public))
    values = verified["signed_data"]["signed_values"]  # type: ignore[index]
    assert [v["signed_data"] for v in values] == list(signed)
    assert [v["nature"] for v in values] == ["Start", "End"]
    assert verified["chargeflow"] == {"signature": "verified", "signature_reason": ""}
    unknown = cdr_json(build_cdr("cdr-6", s, START_ENERGY_PARKING, UTC, None))
    assert unknown["chargeflow"]["signature"] == "no_key"  # type: ignore[index]


def test_cdr_json_is_ocpi_shaped() -> None:
    s = session(160, samples((0, 0), (120, 20_000), (160, 20_000)))
    out = json.loads(json.dumps(cdr_json(build_cdr("cdr-7", s, START_ENERGY_PARKING, UTC))))
    assert out["start_date_time"] == "2024-03-04T10:00:00Z"
    assert out["total_energy"] == 20
    assert out["total_parking_time"] == pytest.approx(40 / 60)
    assert out["total_cost"] == {"excl_vat": "7", "incl_vat": "7.9"}
    assert out["charging_periods"][1] == {
        "start_date_time": "2024-03-04T12:00:00Z",
        "dimensions": [
            {"type": "ENERGY", "volume": 0.0},
            {"type": "PARKING_TIME", "volume": pytest.approx(40 / 60)},
        ],
        "tariff_id": "10",
    }
    assert "signed_data" not in out


rises = st.lists(st.tuples(st.integers(1, 900), st.integers(0, 7000)), min_size=1, max_size=30)


@given(rises, st.lists(st.integers(1, 20_000), max_size=10), st.integers(0, 3600))
def test_periods_conserve_the_metered_energy(
    steps: list[tuple[int, int]], cut_s: list[int], tail_s: int
) -> None:
    at, wh = T0, 12_345
    points = [MeterSample(at, wh)]
    for dt, dwh in steps:
        at, wh = at + timedelta(seconds=dt), wh + dwh
        points.append(MeterSample(at, wh))
    end = at + timedelta(seconds=tail_s)
    cuts = [T0 + timedelta(seconds=c) for c in cut_s]
    usage = usage_from_samples(T0, end, points, cuts, split_at_samples=True)
    assert sum(p.energy_wh for p in usage.periods) == wh - 12_345
    assert all(p.energy_wh == int(p.energy_wh) >= 0 for p in usage.periods)
    assert sum(p.charging_s + p.parking_s for p in usage.periods) == Decimal((end - T0).total_seconds())


def test_energy_per_step_for_the_attribution() -> None:
    points = samples((0, 100), (10, 1100), (25, 1100), (40, 4100))
    grid = [minutes(m) for m in (0, 15, 30, 45)]
    # 0–10 min: 1000 Wh; 10–25: none; 25–40: 3000 Wh, a third of it before 0:30.
    assert energy_per_step(points, grid) == [1000, 1000, 2000]
    with pytest.raises(MeterDataError, match="order"):
        energy_per_step(points, list(reversed(grid)))


@given(rises, st.lists(st.integers(0, 30_000), min_size=2, max_size=12))
def test_energy_per_step_adds_up_to_the_register(steps: list[tuple[int, int]], offsets_s: list[int]) -> None:
    at, wh = T0, 0
    points = [MeterSample(at, wh)]
    for dt, dwh in steps:
        at, wh = at + timedelta(seconds=dt), wh + dwh
        points.append(MeterSample(at, wh))
    bounds = [T0 + timedelta(seconds=s) for s in sorted(offsets_s)]
    parts = energy_per_step(points, bounds)
    assert all(p >= 0 for p in parts)
    whole = energy_per_step(points, [bounds[0], bounds[-1]])
    assert sum(parts) == whole[0]

"""The live system's pieces of the attribution: a step's powers as whole Wh, sessions' register rises per
step, shares capped to a CDR's energy; and the CSM's session turned into billing's ``FinishedSession``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from chargeflow.billing.attribution import (
    BUILDING,
    MERIT_ORDER,
    RegisterDeltas,
    Shares,
    Source,
    attribute_step,
    capped,
    site_step,
)
from chargeflow.csm.model import MeterSample, TransactionRecord
from chargeflow.store.billing import finished_session, signed_values

T0 = datetime(2026, 11, 2, 8, tzinfo=UTC)


def test_a_step_in_wh_from_the_site_meters_powers() -> None:
    # 10 s at 36 kW PV, 3.6 kW battery discharge, 7.2 kW import: 100, 10 and 20 Wh
    step = site_step(10, 36_000, 3_600, 7_200, {"1": 50, "2": 30})
    assert (step.pv_wh, step.battery_discharge_wh, step.grid_import_wh) == (100, 10, 20)
    assert (step.battery_charge_wh, step.export_wh, step.building_wh) == (0, 0, None)
    shares = attribute_step(step)
    assert shares[BUILDING].total_wh == 130 - 80


def test_registers_beyond_the_site_meter_are_taken_from_the_grid() -> None:
    step = site_step(10, 0, -3_600, -360, {"1": 25})  # charging battery 10 Wh, exporting 1 Wh
    assert (step.battery_charge_wh, step.export_wh) == (10, 1)
    assert step.grid_import_wh == 36  # nothing metered in, 36 Wh metered out: the grid balances it
    assert attribute_step(step)["1"].of(Source.GRID) == 25


@given(
    st.floats(0, 100_000),
    st.floats(-30_000, 30_000),
    st.floats(-60_000, 100_000),
    st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 200)),
)
def test_every_step_of_the_live_site_can_be_attributed_and_is_conserved(
    pv_w: float, battery_w: float, grid_w: float, ev_wh: dict[str, int]
) -> None:
    step = site_step(10, pv_w, battery_w, grid_w, ev_wh)
    shares = attribute_step(step)
    for source, supplied in step.supply().items():
        assert sum(s.of(source) for s in shares.values()) == supplied
    for session, wh in ev_wh.items():
        assert shares[session].total_wh == wh


def test_register_deltas_per_step_start_at_meter_start_and_never_run_backwards() -> None:
    deltas = RegisterDeltas()
    assert deltas.step({"1": (1000, 1200)}) == {"1": 200}
    assert deltas.step({"1": (1000, 1250), "2": (0, 10)}) == {"1": 50, "2": 10}
    assert deltas.step({"1": (1000, 1240)}) == {"1": 0}  # a reading below the last one
    assert deltas.step({"1": (1000, 1260)}) == {"1": 10}
    deltas.forget("1")
    assert deltas.step({"1": (1000, 1260)}) == {"1": 260}


def test_shares_are_capped_to_the_cdrs_energy_by_largest_remainder() -> None:
    shares = Shares({Source.PV: 500, Source.BATTERY: 250, Source.GRID: 251})
    assert capped(shares, 2000) is shares
    fitted = capped(shares, 1000)
    assert fitted.total_wh == 1000
    # quotas 499.50, 249.75, 250.75: floors 499, 249, 250 and the two largest remainders get one more
    assert [fitted.of(s) for s in MERIT_ORDER] == [499, 250, 251]


def _sample(
    minutes: int, value: str, measurand: str = "Energy.Active.Import.Register", **kw: str
) -> MeterSample:
    return MeterSample(T0 + timedelta(minutes=minutes), value, measurand, **kw)


def test_a_csm_session_becomes_billings_finished_session() -> None:
    tx = TransactionRecord(
        7, "CP1", 1, 1, T0, 1000, id_token="TAG", meter_stop_wh=3000, stopped_at=T0 + timedelta(minutes=60)
    )
    ocmf = "OCMF|{}|{}"
    samples = [
        _sample(20, "2", unit="kWh"),
        _sample(20, "10", "Current.Import", phase="L1"),
        _sample(20, "11", "Current.Import", phase="L2"),
        _sample(10, "1500"),  # sent late, stored after the 20-minute one
        _sample(15, "1400"),  # below the reading before it: left out
        _sample(40, "3000", signed=ocmf),
        _sample(90, "3000"),  # after the stop
    ]
    session = finished_session(tx, samples)
    assert session is not None
    assert [(int((s.at - T0).total_seconds() // 60), s.energy_wh, s.current_a) for s in session.samples] == [
        (0, 1000, None),
        (10, 1500, None),
        (20, 2000, 21.0),
        (40, 3000, None),
        (60, 3000, None),
    ]
    assert (session.session_id, session.evse_id, session.id_token) == ("7", "CP1", "TAG")
    assert session.signed_values == (ocmf,)
    assert finished_session(TransactionRecord(8, "CP1", 1, 1, T0, 0), samples) is None  # still running


def test_signed_values_from_16_and_201_are_passed_verbatim_once() -> None:
    ocmf = 'OCMF|{"FV":"1.0"}|{"SD":"00"}'
    v201 = json.dumps({"signedMeterData": ocmf, "encodingMethod": "OCMF"})
    samples = [_sample(0, ocmf, signed=ocmf), _sample(1, "1", signed=v201), _sample(2, "2", signed="opaque")]
    assert signed_values(samples) == (ocmf, "opaque")

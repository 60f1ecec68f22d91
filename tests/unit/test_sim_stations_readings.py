"""What a simulated station's meter reports (sim/readings.py)."""

from __future__ import annotations

from chargeflow.sim.ev import Draw
from chargeflow.sim.readings import Reading, meter_value_16, meter_value_201, readings

AT = "2026-11-25T08:00:00.000Z"


def test_current_is_reported_only_on_the_phases_the_ev_uses() -> None:
    one = readings(Draw(12.0, 1, 2760.0, 230.0), register_wh=1234)
    assert one == [
        Reading("Energy.Active.Import.Register", 1234.0, "Wh"),
        Reading("Power.Active.Import", 2760.0, "W"),
        Reading("Current.Import", 12.0, "A", "L1"),
    ]
    three = readings(Draw(10.0, 3, 6900.0, 575.0), register_wh=0, soc=0.4567)
    assert [r.phase for r in three if r.measurand == "Current.Import"] == ["L1", "L2", "L3"]
    assert three[-1] == Reading("SoC", 45.7, "Percent", location="EV")
    idle = readings(Draw(0.0, 0, 0.0, 0.0), register_wh=99)
    assert [r.measurand for r in idle] == ["Energy.Active.Import.Register", "Power.Active.Import"]


def test_v16_values_are_strings_and_v201_values_numbers_with_a_unit_of_measure() -> None:
    items = readings(Draw(16.0, 1, 3680.0, 306.7), register_wh=5000, soc=0.5)
    v16 = meter_value_16(AT, items[:3], "Sample.Periodic")
    assert v16["timestamp"] == AT
    assert v16["sampledValue"][0] == {
        "value": "5000",
        "measurand": "Energy.Active.Import.Register",
        "unit": "Wh",
        "context": "Sample.Periodic",
    }
    assert v16["sampledValue"][2]["phase"] == "L1"
    v201 = meter_value_201(AT, items, "Transaction.Begin")
    assert v201["sampledValue"][1] == {
        "value": 3680.0,
        "measurand": "Power.Active.Import",
        "context": "Transaction.Begin",
        "unitOfMeasure": {"unit": "W"},
    }
    assert v201["sampledValue"][-1]["location"] == "EV"

"""The simulated EV: eq. 1.1.1.1, P_ch = min(P_max^CP, P_max^EV, P_max^{SoC,T})."""

import pytest

from chargeflow.sim.ev import EvModel, battery_factor, draw

EV = EvModel(capacity_wh=60_000, charger_phases=3, charger_max_current_a=16.0)


def test_full_power_below_the_taper_and_less_above_it() -> None:
    assert battery_factor(EV, 0.5, 20) == 1.0
    assert battery_factor(EV, 0.9, 20) == pytest.approx(0.5)
    assert battery_factor(EV, 1.0, 20) == 0.0


def test_cold_battery_charges_slower_down_to_a_floor() -> None:
    assert battery_factor(EV, 0.5, 10) == 1.0
    assert battery_factor(EV, 0.5, -5) == pytest.approx(1.0 - 0.7 * 15 / 30)
    assert battery_factor(EV, 0.5, -40) == pytest.approx(0.3)


def test_draw_is_the_least_of_station_limit_charger_and_battery() -> None:
    assert draw(EV, 0.5, 20, limit_a=32, station_phases=3, voltage_v=230, step_s=60).current_a == 16.0
    assert draw(EV, 0.5, 20, limit_a=10, station_phases=3, voltage_v=230, step_s=60).current_a == 10.0
    tapering = draw(EV, 0.9, 20, limit_a=32, station_phases=3, voltage_v=230, step_s=60)
    assert tapering.current_a == pytest.approx(8.0)
    assert tapering.energy_wh == pytest.approx(8.0 * 690 / 60)


def test_single_phase_station_uses_one_phase_of_a_three_phase_charger() -> None:
    d = draw(EV, 0.5, 20, limit_a=32, station_phases=1, voltage_v=230, step_s=3600)
    assert (d.phases, d.current_a) == (1, 16.0)
    assert d.energy_wh == pytest.approx(16 * 230)


def test_an_ev_never_takes_more_than_it_can_store() -> None:
    d = draw(EV, 0.9999, 20, limit_a=32, station_phases=3, voltage_v=230, step_s=3600)
    assert d.energy_wh <= 0.0001 * 60_000 + 1e-9
    assert draw(EV, 1.0, 20, limit_a=32, station_phases=3, voltage_v=230, step_s=60).power_w == 0.0


def test_nonsense_models_are_refused() -> None:
    with pytest.raises(ValueError, match="usable"):
        EvModel(capacity_wh=0)

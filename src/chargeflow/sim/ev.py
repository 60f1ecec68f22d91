"""A simulated EV: battery, on-board charger, and a charging power that falls at high state of charge and
in the cold (TF-EVC eq. 1.1.1.1: P_ch = min(P_max^CP, P_max^EV, P_max^{SoC,T})).

The battery accepts its full power up to ``taper_soc`` and then, as a lithium-ion cell does in its
constant-voltage phase, less and less, linearly down to nothing at full charge. Below ``cold_below_c`` the
battery management limits charging further: a simple linear derating to ``cold_floor`` at −20 °C, which is
the shape (not the exact numbers) reported for cold charging of EV batteries.
"""

from __future__ import annotations

from dataclasses import dataclass

from chargeflow.units import SECONDS_PER_HOUR


@dataclass(frozen=True, slots=True)
class EvModel:
    capacity_wh: int
    charger_phases: int = 3  # the on-board charger's phases
    charger_max_current_a: float = 16.0  # the on-board charger's current per phase
    taper_soc: float = 0.8
    cold_below_c: float = 10.0
    cold_floor: float = 0.3

    def __post_init__(self) -> None:
        if self.capacity_wh <= 0 or not 0 < self.taper_soc < 1 or self.charger_phases not in (1, 2, 3):
            raise ValueError(f"not a usable EV model: {self}")


@dataclass(frozen=True, slots=True)
class Draw:
    current_a: float  # per phase
    phases: int
    power_w: float
    energy_wh: float  # over the step, as the station's meter counts it


def battery_factor(model: EvModel, soc: float, temperature_c: float) -> float:
    """P_max^{SoC,T} as a share of the charger's maximum."""
    soc_factor = 1.0 if soc <= model.taper_soc else max((1.0 - soc) / (1.0 - model.taper_soc), 0.0)
    if temperature_c >= model.cold_below_c:
        cold = 1.0
    else:
        span = model.cold_below_c + 20.0
        cold = max(
            model.cold_floor, 1.0 - (1.0 - model.cold_floor) * (model.cold_below_c - temperature_c) / span
        )
    return soc_factor * cold


def draw(
    model: EvModel,
    soc: float,
    temperature_c: float,
    limit_a: float,
    station_phases: int,
    voltage_v: float,
    step_s: float,
) -> Draw:
    """What the EV draws for one step under the station's current limit ``limit_a``.

    It never takes more than it can store in the step: near full, it draws only what fills it.
    """
    phases = min(station_phases, model.charger_phases)
    current = min(limit_a, model.charger_max_current_a * battery_factor(model, soc, temperature_c))
    room_wh = max((1.0 - soc) * model.capacity_wh, 0.0)
    power = max(current, 0.0) * phases * voltage_v
    energy = min(power * step_s / SECONDS_PER_HOUR, room_wh)
    if energy < power * step_s / SECONDS_PER_HOUR:
        power = energy * SECONDS_PER_HOUR / step_s
        current = power / (phases * voltage_v)
    return Draw(max(current, 0.0), phases, power, energy)

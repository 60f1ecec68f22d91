"""What the site's meters say: the facts both actors read, each for its own rules.

The EMS reads them to grant power; the CSM reads the building's load to keep the fuses while it splits
the grant. Neither decides anything with them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chargeflow.site.circuit_loads import CircuitReading


@dataclass(frozen=True, slots=True)
class BuildingPower:
    """The site's uncontrolled load and generation, in W (TF-EVC P_used and P_gen)."""

    consumption_w: float
    generation_w: float = 0.0

    @property
    def net_w(self) -> float:
        return self.consumption_w - self.generation_w

    def with_margin(self, margin_pct: float) -> BuildingPower:
        """The reading as a careful controller counts it: consumption ``margin_pct`` higher and generation
        ``margin_pct`` lower than read.

        A reading is a step old and a few tenths of a percent off; a margin taken only on the grid limit
        is too small where large PV is counted in the grant (70 kW of PV read 1 % high on a 60 kW
        connection is already 0.7 kW over): the margin has to scale with what is measured.
        """
        k = margin_pct / 100.0
        return BuildingPower(self.consumption_w * (1 + k), self.generation_w * (1 - k))

    @classmethod
    def from_net_meter(cls, meter_w: float, ev_w: float, ess_discharge_w: float) -> BuildingPower:
        """The framework's second variant: only the smart meter's net power is known.

        The controllable parts measured at the same moment are taken out; what is left is the building's
        net load. Consumption hidden behind local generation cannot be seen this way, so the result may
        understate consumption on sites with PV; sites with PV should meter it separately.
        """
        base_w = meter_w - ev_w + ess_discharge_w
        return cls(consumption_w=max(base_w, 0.0), generation_w=max(-base_w, 0.0))


@dataclass(frozen=True, slots=True)
class EssState:
    stored_wh: float


@dataclass(frozen=True, slots=True)
class SiteMeasurement:
    """One reading of the site: the building's load and generation, the ESS's state, the EVs' power, and
    what the circuit meters say (``site.circuit_loads``; an unusable one with its power None)."""

    at: datetime
    building: BuildingPower
    ess: EssState | None = None
    ev_w: float = 0.0
    circuits: tuple[CircuitReading, ...] = ()


class SiteMeter(Protocol):
    async def read(self) -> SiteMeasurement: ...

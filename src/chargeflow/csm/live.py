"""What the stations' meters say right now, per connector: the CSM's live view of each running EV.

Pure: fed with the meter samples as the stations send them; read by the smart-charging service for the
EVs' present current per phase, their power and which phases they use — from which the EV's own maximum is
learned (``csm.evmax``) and an EV that draws more than it may is caught (framework 1.1.1: the station can
cut power but cannot make an EV draw less).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from chargeflow.csm.evmax import EvMaxEstimate, learn_ev_max
from chargeflow.csm.model import MeterSample

_PHASES = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}


@dataclass(slots=True)
class ConnectorLive:
    """The latest readings of one connector and what was learned from them."""

    at: datetime | None = None
    current_a: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # on the station's L1..L3
    power_w: float | None = None
    register_wh: float | None = None
    soc_pct: float | None = None
    estimate: EvMaxEstimate = field(default_factory=EvMaxEstimate)
    over_since: datetime | None = None  # since when the EV draws more than its limit

    @property
    def drawn_a(self) -> float:
        return max(self.current_a)

    @property
    def phases_used(self) -> int | None:
        """How many of the station's phases the EV draws on; None while it draws nothing."""
        used = sum(1 for a in self.current_a if a > 0.5)
        return used or None


def _number(sample: MeterSample) -> float | None:
    try:
        return float(sample.value)
    except ValueError:
        return None  # signed or otherwise opaque values are kept by the store, not read here


def _scale(unit: str | None, value: float) -> float:
    return value * 1000.0 if unit in ("kW", "kWh") else value


class LiveState:
    def __init__(self) -> None:
        self._by_connector: dict[tuple[str, int], ConnectorLive] = {}

    def get(self, station_id: str, evse_id: int) -> ConnectorLive:
        return self._by_connector.setdefault((station_id, evse_id), ConnectorLive())

    def forget(self, station_id: str, evse_id: int) -> None:
        self._by_connector.pop((station_id, evse_id), None)

    def observe(self, station_id: str, evse_id: int, samples: Iterable[MeterSample]) -> None:
        live = self.get(station_id, evse_id)
        currents: list[float] | None = None
        for s in samples:
            value = _number(s)
            if value is None:
                continue
            if live.at is None or s.timestamp > live.at:
                live.at = s.timestamp
            if s.measurand == "Current.Import":
                if currents is None:
                    currents = [0.0, 0.0, 0.0]
                index = _PHASES.get(s.phase or "L1", 0)
                currents[index] = value
            elif s.measurand == "Power.Active.Import" and s.phase is None:
                live.power_w = _scale(s.unit, value)
            elif s.measurand == "Energy.Active.Import.Register" and s.phase is None:
                live.register_wh = _scale(s.unit, value)
            elif s.measurand == "SoC":
                live.soc_pct = value
        if currents is not None:
            live.current_a = currents

    def learn(self, station_id: str, evse_id: int, offered_a: float, min_current_a: float) -> EvMaxEstimate:
        """Update the EV's learned maximum from its latest draw under ``offered_a``."""
        live = self.get(station_id, evse_id)
        live.estimate = learn_ev_max(live.estimate, offered_a, live.drawn_a, min_current_a)
        return live.estimate

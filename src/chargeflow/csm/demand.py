"""The CSM's demand (TF-EVC ChPr → SmCh): P_needed and P_wished from each session's preferences.

For each connected EV, in current per phase:

- **need**: the least current now that still lets the EV reach ΔE_min by its departure if it charges at
  its maximum rate from the next step on. With E_rest still missing, maximum power P_max, time to departure
  T and step Δt:  P_need = clamp((E_rest − P_max·max(T − Δt, 0)) / Δt, 0, P_max).  A need above zero but
  below the station's minimum current is raised to the minimum: AC charging cannot run below it.
- **wish**: what the EV could take now towards ΔE_max within the driver's price caps — C_max(a) for the
  energy up to ΔE_min, C_max(b) beyond it — never less than the need.

P_needed and P_wished are the sums over the EVs, in W. The maximum is min(station maximum, EV maximum)
(eq. 1.1.1.1). The demand of all EVs is computed at once into a ``DemandTable`` of arrays: a control step
for a thousand EVs has a few milliseconds. Pure: ``now`` and the energy price are arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from chargeflow.site.model import ChargingPoint
from chargeflow.units import SECONDS_PER_HOUR, ceil_current, floor_current, grid_phases_of

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class WishReason(StrEnum):
    """Why an EV's wish is not higher."""

    STATION_MAX = "station_max"
    EV_MAX = "ev_max"
    ENERGY_REACHED = "energy_reached"  # ΔE_max (or the rest of it this step) reached
    PRICE_CAP = "price_cap"  # the energy price is above the driver's cap
    EV_BELOW_MIN = "ev_below_station_min"  # the EV takes less than the station's minimum current


_REASONS = tuple(WishReason)


@dataclass(frozen=True, slots=True)
class Preferences:
    """TF-EVC ChPr: ΔE_min, ΔE_max [Wh], departure, and the price caps (a) up to ΔE_min, (b) beyond it."""

    needed_wh: int
    wished_wh: int
    departure: datetime
    price_cap_needed_per_kwh: Decimal | None = None
    price_cap_wished_per_kwh: Decimal | None = None

    def __post_init__(self) -> None:
        if self.needed_wh < 0 or self.wished_wh < self.needed_wh:
            raise ValueError(f"need 0 ≤ needed_wh ≤ wished_wh, got {self.needed_wh} and {self.wished_wh}")
        if self.departure.tzinfo is None:
            raise ValueError("departure must be timezone-aware")


@dataclass(frozen=True, slots=True)
class EvSession:
    """A connected EV as the CSM sees it for one step."""

    id: str
    circuit: str
    phases: int
    l1_phase: int
    min_current_a: float
    station_max_current_a: float
    preferences: Preferences
    charged_wh: int = 0
    ev_max_current_a: float | None = None  # learned from what the EV draws (csm.evmax)
    priority: int = 0

    @classmethod
    def at(
        cls,
        point: ChargingPoint,
        preferences: Preferences,
        charged_wh: int = 0,
        ev_max_current_a: float | None = None,
        priority: int = 0,
        phases: int | None = None,
    ) -> EvSession:
        """The session of an EV connected to ``point``; ``phases`` where the EV is seen to use fewer phases
        than the station has (a single-phase EV on a three-phase station draws on the station's L1)."""
        return cls(
            id=point.id,
            circuit=point.circuit,
            phases=min(phases or point.phases, point.phases),
            l1_phase=point.l1_phase,
            min_current_a=point.min_current_a,
            station_max_current_a=point.max_current_a,
            preferences=preferences,
            charged_wh=charged_wh,
            ev_max_current_a=ev_max_current_a,
            priority=priority,
        )


@dataclass(frozen=True, slots=True, eq=False)
class DemandTable:
    """The demand of every connected EV for one step, as arrays indexed like the sessions."""

    ids: tuple[str, ...]
    circuits: tuple[str, ...]
    grid_phases: tuple[tuple[int, ...], ...]
    w_per_a: FloatArray  # watts per ampere of per-phase current: phases × voltage
    min_a: FloatArray
    max_a: FloatArray
    need_a: FloatArray
    wish_a: FloatArray
    wish_reason: npt.NDArray[np.int64]  # index into WishReason
    time_left_s: FloatArray  # to departure
    laxity_s: FloatArray  # time to departure minus the time the rest of ΔE_min takes at full rate
    needs_energy: BoolArray  # ΔE_min not reached yet
    priority: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def needed_w(self) -> float:
        """P_needed of the site."""
        return float(self.need_a @ self.w_per_a)

    @property
    def wished_w(self) -> float:
        """P_wished of the site."""
        return float(self.wish_a @ self.w_per_a)

    def reason(self, i: int) -> WishReason:
        return _REASONS[int(self.wish_reason[i])]


def _price_ok(price: Decimal | None, cap: Decimal | None) -> bool:
    return price is None or cap is None or price <= cap


def _at_least_min(current: FloatArray, min_a: FloatArray) -> FloatArray:
    return np.where(current > 0, np.maximum(current, min_a), 0.0)


def demand_table(
    sessions: Sequence[EvSession],
    now: datetime,
    step_s: float,
    voltage_v: float,
    price_per_kwh: Decimal | None = None,
) -> DemandTable:
    n = len(sessions)
    phases = np.fromiter((s.phases for s in sessions), np.float64, n)
    min_a = np.fromiter((s.min_current_a for s in sessions), np.float64, n)
    station_max = np.fromiter((s.station_max_current_a for s in sessions), np.float64, n)
    ev_max = np.fromiter(
        (np.inf if s.ev_max_current_a is None else s.ev_max_current_a for s in sessions), np.float64, n
    )
    prefs = [s.preferences for s in sessions]
    time_left = np.fromiter(((p.departure - now).total_seconds() for p in prefs), np.float64, n)
    charged = np.fromiter((s.charged_wh for s in sessions), np.float64, n)
    rest_needed = np.maximum(np.fromiter((p.needed_wh for p in prefs), np.float64, n) - charged, 0.0)
    rest_wished = np.maximum(np.fromiter((p.wished_wh for p in prefs), np.float64, n) - charged, 0.0)
    ok_a = np.fromiter((_price_ok(price_per_kwh, p.price_cap_needed_per_kwh) for p in prefs), bool, n)
    ok_b = np.fromiter((_price_ok(price_per_kwh, p.price_cap_wished_per_kwh) for p in prefs), bool, n)

    w_per_a = phases * voltage_v
    # on the stations' current step: a limit is rounded down to it, and a need capped at an EV maximum off the
    # step (a learned 16.48 A) could never be met by a limit (16.4 A)
    max_a = floor_current(np.minimum(station_max, ev_max))
    max_reason = np.where(ev_max < station_max, _REASONS.index(WishReason.EV_MAX), 0)
    runs = (max_a >= min_a) & (max_a > 0)
    max_w = max_a * w_per_a
    to_w = SECONDS_PER_HOUR / step_s

    later_wh = max_w * np.maximum(time_left - step_s, 0.0) / SECONDS_PER_HOUR
    need_w = np.clip((rest_needed - later_wh) * to_w, 0.0, max_w)
    need_a = _at_least_min(np.minimum(ceil_current(need_w / w_per_a), max_a), min_a)

    flexible_wh = np.where(ok_a, rest_needed, 0.0) + np.where(ok_b, rest_wished - rest_needed, 0.0)
    wish_a = np.maximum(
        np.minimum(max_a, _at_least_min(ceil_current(flexible_wh * to_w / w_per_a), min_a)), need_a
    )
    reason = np.where(
        wish_a < max_a,
        np.where(
            flexible_wh >= rest_wished,
            _REASONS.index(WishReason.ENERGY_REACHED),
            _REASONS.index(WishReason.PRICE_CAP),
        ),
        max_reason,
    )
    rest = np.where(rest_needed > 0, rest_needed, rest_wished)
    with np.errstate(divide="ignore", invalid="ignore"):
        laxity = time_left - np.where(runs, rest * SECONDS_PER_HOUR / max_w, 0.0)

    need_a = np.where(runs, need_a, 0.0)
    wish_a = np.where(runs, wish_a, 0.0)
    reason = np.where(runs, reason, _REASONS.index(WishReason.EV_BELOW_MIN))
    return DemandTable(
        ids=tuple(s.id for s in sessions),
        circuits=tuple(s.circuit for s in sessions),
        grid_phases=tuple(grid_phases_of(s.phases, s.l1_phase) for s in sessions),
        w_per_a=w_per_a,
        min_a=min_a,
        max_a=np.maximum(max_a, 0.0),
        need_a=need_a,
        wish_a=wish_a,
        wish_reason=reason.astype(np.int64),
        time_left_s=time_left,
        laxity_s=laxity,
        needs_energy=rest_needed > 0,
        priority=np.fromiter((s.priority for s in sessions), np.int64, n),
    )

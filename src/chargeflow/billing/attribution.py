"""Which source fed each consumer: the share of PV, battery and grid in every session, step by step.

For the energy-community case of TF-EVC section 1.4 (1.4.1–1.4.2): a site owner remunerates self-produced
energy, a CPO reports it. The meters say, per step, how much came from each source (PV production, battery
discharge, grid import) and how much went to each consumer (the building, each charging session, battery
charging, grid export). Which electron went where is not measurable, so a site rule decides:

* Sources are drawn in merit order: PV first, then the battery, then the grid.
* Consumers are served in tiers. The default rule, ``BUILDING_FIRST``, serves the building first, then the
  EVs together, pro rata by their energy in the step (the same as pro rata by average power), then battery
  charging and grid export. ``PRO_RATA`` serves the building and the EVs together; ``EVS_FIRST`` the EVs
  before the building. Battery charging and export always come last: they take what is left.
* Each tier takes from the remaining sources in merit order; within a tier, each source's amount is split
  over the consumers in proportion to what they still need, by largest remainder, so that every share is
  whole Wh and the shares add up exactly to the metered amounts, per source and per consumer.
* A step whose sources exceed its consumers gives the surplus to ``LOSSES`` (cables, conversion, meter
  tolerance); a step whose consumers exceed its sources is refused, because energy would be invented.
  A building without its own meter is the residual: sources minus all other consumers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from fractions import Fraction


class Source(StrEnum):
    PV = "pv"
    BATTERY = "battery"
    GRID = "grid"


MERIT_ORDER = (Source.PV, Source.BATTERY, Source.GRID)

BUILDING = "building"
BATTERY_CHARGE = "battery_charge"
EXPORT = "export"
LOSSES = "losses"


class Rule(Enum):
    BUILDING_FIRST = "building_first"
    PRO_RATA = "pro_rata"
    EVS_FIRST = "evs_first"


@dataclass(frozen=True, slots=True)
class SiteStep:
    """What the meters recorded over one step (all in Wh, non-negative)."""

    pv_wh: int
    battery_discharge_wh: int
    grid_import_wh: int
    ev_wh: Mapping[str, int]  # energy into each charging session, by session id
    building_wh: int | None = None  # None: the building has no meter and is the residual
    battery_charge_wh: int = 0
    export_wh: int = 0

    def supply(self) -> dict[Source, int]:
        return {
            Source.PV: self.pv_wh,
            Source.BATTERY: self.battery_discharge_wh,
            Source.GRID: self.grid_import_wh,
        }


@dataclass(frozen=True, slots=True)
class Shares:
    """One consumer's energy by source, in Wh."""

    by_source: dict[Source, int] = field(default_factory=dict)

    @property
    def total_wh(self) -> int:
        return sum(self.by_source.values())

    def of(self, source: Source) -> int:
        return self.by_source.get(source, 0)

    def __add__(self, other: Shares) -> Shares:
        return Shares({s: self.of(s) + other.of(s) for s in MERIT_ORDER})


class AttributionError(ValueError):
    """A step that cannot be attributed without inventing energy."""


def attribute_step(step: SiteStep, rule: Rule = Rule.BUILDING_FIRST) -> dict[str, Shares]:
    """The shares of every consumer in one step: the building, each session id, and the fixed keys
    ``battery_charge``, ``export`` and ``losses``."""
    supply = step.supply()
    values = [*supply.values(), *step.ev_wh.values(), step.battery_charge_wh, step.export_wh]
    if step.building_wh is not None:
        values.append(step.building_wh)
    if any(v < 0 for v in values):
        raise AttributionError("metered amounts must not be negative")
    for reserved in (BUILDING, BATTERY_CHARGE, EXPORT, LOSSES):
        if reserved in step.ev_wh:
            raise AttributionError(f"{reserved!r} is not a session id: it names a consumer of its own")
    others = sum(step.ev_wh.values()) + step.battery_charge_wh + step.export_wh
    total_supply = sum(supply.values())
    building = step.building_wh if step.building_wh is not None else max(total_supply - others, 0)
    losses = total_supply - others - building
    if losses < 0:
        raise AttributionError(
            f"consumers take {others + building} Wh but the sources give only {total_supply} Wh"
        )
    evs = dict(step.ev_wh)
    tiers: list[dict[str, int]]
    if rule is Rule.BUILDING_FIRST:
        tiers = [{BUILDING: building}, evs]
    elif rule is Rule.EVS_FIRST:
        tiers = [evs, {BUILDING: building}]
    else:
        tiers = [{BUILDING: building, **evs}]
    tiers.append({BATTERY_CHARGE: step.battery_charge_wh, EXPORT: step.export_wh, LOSSES: losses})
    remaining = dict(supply)
    out: dict[str, Shares] = {}
    for tier in tiers:
        out.update(_serve(tier, remaining))
    return out


def attribute_sessions(
    steps: Iterable[SiteStep], rule: Rule = Rule.BUILDING_FIRST
) -> tuple[dict[str, Shares], list[dict[str, Shares]]]:
    """Per-session totals over ``steps`` and the per-step shares of every consumer."""
    per_step = [attribute_step(step, rule) for step in steps]
    totals: dict[str, Shares] = {}
    for shares in per_step:
        for consumer, s in shares.items():
            totals[consumer] = totals.get(consumer, Shares()) + s
    return totals, per_step


def _serve(demand: Mapping[str, int], remaining: dict[Source, int]) -> dict[str, Shares]:
    """Cover ``demand`` from ``remaining`` in merit order; ``remaining`` is drawn down in place."""
    need = dict(demand)
    out = {consumer: Shares({s: 0 for s in MERIT_ORDER}) for consumer in demand}
    for source in MERIT_ORDER:
        taken = min(remaining[source], sum(need.values()))
        remaining[source] -= taken
        consumers = list(need)
        for consumer, wh in zip(
            consumers, largest_remainder(taken, [need[c] for c in consumers]), strict=True
        ):
            out[consumer].by_source[source] += wh
            need[consumer] -= wh
    return out


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` into whole numbers that add up to ``total`` exactly.

    Each part is its quota rounded down, and the units left over go to the largest fractional remainders
    (ties to the earlier weight). When ``total`` ≤ Σ ``weights`` no part exceeds its weight.
    """
    weight_sum = sum(weights)
    if total == 0 or weight_sum == 0:
        if total:
            raise ValueError("cannot split a non-zero total over zero weights")
        return [0 for _ in weights]
    quotas = [Fraction(total * w, weight_sum) for w in weights]
    parts = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def site_step(
    step_s: float, pv_w: float, battery_w: float, grid_w: float, ev_wh: Mapping[str, int]
) -> SiteStep:
    """One control step of a live site as the attribution's amounts, in whole Wh.

    ``battery_w`` is positive when the battery discharges, ``grid_w`` positive on import (the site meter's
    signs). The sessions' energy ``ev_wh`` comes from the stations' registers and the building is the
    residual. The registers and the site meter round and sample at different instants, so the sessions
    may show a few Wh more than the site meter has left for them; that difference is counted as grid
    import, the source that balances the site in reality.
    """
    hours = step_s / 3600.0
    pv = round(max(pv_w, 0.0) * hours)
    discharge = round(max(battery_w, 0.0) * hours)
    charge = round(max(-battery_w, 0.0) * hours)
    grid_import = round(max(grid_w, 0.0) * hours)
    export = round(max(-grid_w, 0.0) * hours)
    shortfall = sum(ev_wh.values()) + charge + export - (pv + discharge + grid_import)
    return SiteStep(
        pv_wh=pv,
        battery_discharge_wh=discharge,
        grid_import_wh=grid_import + max(shortfall, 0),
        ev_wh=dict(ev_wh),
        battery_charge_wh=charge,
        export_wh=export,
    )


class RegisterDeltas:
    """Each session's energy per step from its station's cumulative register (whole Wh)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def step(self, registers: Mapping[str, tuple[int, int]]) -> dict[str, int]:
        """``registers``: session id → (register at its start, register now). The rise since the last
        step per session; a register that runs backwards (a meter replaced, a bad reading) gives 0."""
        out = {}
        for session, (start_wh, now_wh) in registers.items():
            last = self._last.get(session, start_wh)
            out[session] = max(now_wh - last, 0)
            self._last[session] = max(now_wh, last)
        return out

    def forget(self, session: str) -> None:
        self._last.pop(session, None)


def capped(shares: Shares, energy_wh: int) -> Shares:
    """``shares`` scaled down (whole Wh, largest remainder) where they add up to more than ``energy_wh``,
    the energy the session's CDR states: live steps can see a little more than the stop's reading."""
    total = shares.total_wh
    if total <= energy_wh:
        return shares
    parts = largest_remainder(energy_wh, [shares.of(s) for s in MERIT_ORDER])
    return Shares(dict(zip(MERIT_ORDER, parts, strict=True)))

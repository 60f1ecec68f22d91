"""What EVs draw beyond their limits, counted against the fuses and the grant (TF-EVC PoFl eq. 3.2.5.1).

A station can cut an EV's power but cannot make it draw less (framework 1.1.1): an EV, or a station, that
ignores its limit goes on drawing whatever the CSM sends. The split keeps the EVs' *limits* within every
fuse and within P_granted; the excess of what an EV is measured to draw over its limit in force is a load
the limits did not count, so it is counted here as one more load on its circuit and its ancestors, per
grid phase, and taken off the grant, for as long as it is measured. An EV that was suspended for
overdrawing (limit 0 A) thus keeps its whole draw counted until it stops.

An EV is given time to follow a limit that was lowered (IEC 61851-1 gives it 5 s after the PWM changes,
and its station's next meter value comes later still): until then, the limit it is held to here is the
one before. A session on no charging point of the site (a station held at 0 A because the file keeps no
place for it) counts its largest phase current on all three phases of the grid access point, the only
circuit it is known to hang below. Pure: currents, limits and the tree in, loads out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from chargeflow.site.model import ChargingPoint, PhaseTriple
from chargeflow.site.tree import CircuitTree, constraint_index
from chargeflow.units import GRID_PHASES


@dataclass(frozen=True, slots=True)
class Excess:
    """What one EV draws beyond its limit: per grid phase (L1, L2, L3) in A, and in W."""

    circuit: str
    current_a: PhaseTriple
    power_w: float


def excess_of(
    point: ChargingPoint | None,
    root: str,
    station_current_a: Sequence[float],
    limit_a: float,
    voltage_v: float,
    tolerance_a: float = 0.0,
) -> Excess | None:
    """The excess of the currents a station reports on its own L1..L3 over ``limit_a``, turned to grid
    phases by the point's wiring; None where no phase is more than ``tolerance_a`` over (meter noise)."""
    over = [max(c - limit_a, 0.0) for c in station_current_a[:3]]
    if max(over, default=0.0) <= tolerance_a:
        return None
    if point is None:
        most = max(over)
        return Excess(root, (most, most, most), 3 * most * voltage_v)
    grid = [0.0, 0.0, 0.0]
    for k, amps in enumerate(over):
        grid[(point.l1_phase - 1 + k) % 3] += amps
    return Excess(point.circuit, (grid[0], grid[1], grid[2]), sum(grid) * voltage_v)


def add_excess(tree: CircuitTree, loads_a: list[float], excesses: Iterable[Excess]) -> float:
    """Add each excess to the loads of its circuit and every circuit above it; the total power, in W."""
    total = 0.0
    for e in excesses:
        total += e.power_w
        for c in tree.chain_of(e.circuit):
            for p in GRID_PHASES:
                loads_a[constraint_index(c, p)] += e.current_a[p - 1]
    return total


def held_to(history: Sequence[tuple[datetime, float]], reading_at: datetime, comply_s: float) -> float | None:
    """The limit an EV is held to in a reading taken at ``reading_at``: the highest limit in force at any
    time in the ``comply_s`` before it (an EV is given that long to follow a lowered limit; a raised one
    counts at once). ``history`` is the session's limits as (when it took it, A), oldest first; None where
    none was in force yet (the station's default applies)."""
    since = reading_at - timedelta(seconds=comply_s)
    held: float | None = None
    for at, limit in history:
        if at <= since:
            held = limit  # the one in force when the window opened (a later one replaces it)
        elif at <= reading_at:
            held = limit if held is None else max(held, limit)
    return held

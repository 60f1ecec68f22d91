"""The non-EV load on every fuse constraint, from the building's meter and the site's circuit meters (pure).

TF-EVC PoFl eq. 3.2.5.1: the loads on every circuit stay within its fuse, per phase. The split
(``csm.split``) keeps the EVs within the headroom each constraint has left after the *other* loads; this
module says what those are. Without circuit meters it is ``site.tree.building_loads_a``: the building's
consumption balanced over three phases on its circuit and its ancestors.

A circuit meter measures everything on its circuit and below it, EVs included. Its non-EV load is its
reading less what the EVs below it draw by their stations' own meters, never below 0:

- per phase where the meter gives per-phase currents: ``max(I_p − EV_p, 0)`` on grid phase p;
- from its power alone: ``max(P − P_EV, 0) / (3 V)`` on each phase, balanced like the building's load.
  (Power is subtracted as a whole: a single-phase EV on a balanced-read circuit would otherwise leave a
  phantom load on the two phases it does not use.) A circuit with a large single-phase load should be
  metered per phase: its balanced share under-counts the loaded phase.

An EV whose station reports no currents counts 0 A against a per-phase reading: its draw stays in the
circuit's load, on the safe side. The EVs' meters and the circuit's are read at different moments: an EV
whose limit was just lowered would leave its old, higher draw subtracted until its station's next meter
value, and the circuit's load would read low by the difference. So an EV's draw counts at most its limit
in force (``EvDraw.at``): once the circuit meter sees the EV come down, the subtraction has come down too;
before, the load reads high, which is safe.

Counting, bottom up: a circuit's load is the sum of its children's, and on the building's circuit at least
the building's share; on a metered circuit at least its own non-EV load. Maximum, not sum, where the two
measure the same thing: the building's consumption (grid less EVs, or its own meter) already contains a
heat pump on a metered sub-circuit, and a metered circuit's reading already contains the building where
the building hangs below it; counting both would halve the EVs' room for nothing.

A circuit meter whose reading cannot be used (stale, implausible, missing) leaves its circuit's load
unknown. It is then counted as the fuse less the safe limits (``csm.safe``) of all the stations below it,
on each phase: the EVs below it get no more room together than their safe limits, the state the whole
site falls back to when its own meter is silent. But never less than the circuit's last measured non-EV
load: the safe limits are shares of the fuses with the *building* at its peak on the building's circuit,
and know nothing of a heat pump on a sub-circuit; a heat pump that ran when the meter fell silent is
counted on. (The last reading alone is not enough either: a heat pump that starts after the meter fell
silent is not in it.) Never less than what the circuit's metered children and the building already put
on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chargeflow.site.model import ChargingPoint, PhaseTriple, Site
from chargeflow.site.tree import CircuitTree, constraint_index
from chargeflow.units import GRID_PHASES


@dataclass(frozen=True, slots=True)
class CircuitReading:
    """What a circuit meter says of everything on ``circuit`` and below it, consumption positive.

    ``power_w`` None: the reading cannot be used (stale, implausible); ``current_a`` per grid phase
    (L1, L2, L3) where the meter gives it, else None and the power counts balanced.
    """

    circuit: str
    power_w: float | None
    current_a: PhaseTriple | None = None

    def with_margin(self, margin_pct: float) -> CircuitReading:
        """Read ``margin_pct`` high, as the controller counts the building (``BuildingPower.with_margin``)."""
        k = 1 + margin_pct / 100.0
        if self.power_w is None:
            return self
        a = self.current_a
        return CircuitReading(
            self.circuit, self.power_w * k, None if a is None else (a[0] * k, a[1] * k, a[2] * k)
        )


@dataclass(frozen=True, slots=True)
class EvDraw:
    """What one EV draws by its station's meter, on the circuit its charging point hangs on."""

    circuit: str
    current_a: PhaseTriple  # per grid phase
    power_w: float

    @classmethod
    def at(
        cls,
        point: ChargingPoint,
        station_current_a: Sequence[float],
        power_w: float | None,
        voltage_v: float,
        limit_a: float | None = None,
    ) -> EvDraw:
        """From the station's currents on its own L1..L3, turned to grid phases by its wiring
        (``l1_phase``); its power where the station reports it, else the currents' sum times the voltage.
        Each at most what ``limit_a``, the limit in force, allows (see the module's note)."""
        cap = float("inf") if limit_a is None else max(limit_a, 0.0)
        grid = [0.0, 0.0, 0.0]
        for k, current in enumerate(station_current_a[:3]):
            grid[(point.l1_phase - 1 + k) % 3] += min(max(current, 0.0), cap)
        power = power_w if power_w is not None else sum(grid) * voltage_v
        power = min(power, cap * point.phases * voltage_v)
        return cls(point.circuit, (grid[0], grid[1], grid[2]), max(power, 0.0))


def measured_loads_a(
    site: Site, tree: CircuitTree, readings: Sequence[CircuitReading], evs: Sequence[EvDraw] = ()
) -> dict[str, PhaseTriple]:
    """Each metered circuit's non-EV load per grid phase, in A, from its usable readings (the larger where
    two meters measure one circuit): its reading less the EVs on it and below it, never below 0."""
    voltage = site.voltage_v
    ev_a: dict[str, list[float]] = {}
    ev_w: dict[str, float] = {}
    for ev in evs:
        for c in tree.chain_of(ev.circuit):
            cid = tree.circuits[c].id
            ev_w[cid] = ev_w.get(cid, 0.0) + ev.power_w
            below = ev_a.setdefault(cid, [0.0, 0.0, 0.0])
            for p in range(3):
                below[p] += ev.current_a[p]
    out: dict[str, PhaseTriple] = {}
    for r in readings:
        if r.power_w is None:
            continue
        drawn = ev_a.get(r.circuit, [0.0, 0.0, 0.0])
        if r.current_a is not None:
            load = [max(r.current_a[p] - drawn[p], 0.0) for p in range(3)]
        else:
            load = [max(r.power_w - ev_w.get(r.circuit, 0.0), 0.0) / (3 * voltage)] * 3
        seen = out.get(r.circuit)
        if seen is not None:
            load = [max(a, b) for a, b in zip(seen, load, strict=True)]
        out[r.circuit] = (load[0], load[1], load[2])
    return out


def other_loads_a(
    site: Site,
    tree: CircuitTree,
    building_w: float,
    readings: Sequence[CircuitReading] = (),
    evs: Sequence[EvDraw] = (),
    safe_a: Mapping[str, float] | None = None,
    last_a: Mapping[str, PhaseTriple] | None = None,
) -> list[float]:
    """The non-EV load on every fuse constraint (``site.tree.constraint_index``), in A.

    ``site`` and ``tree`` as the controller sees them (fuses with its margin); ``building_w`` the
    building's consumption; ``readings`` the circuit meters' (with the controller's margin), ``evs`` what
    the EVs draw. For a circuit whose meter is unusable: ``safe_a`` each charging point's safe limit (a
    point not named counts 0 A, which leaves the whole fuse to the other loads), and ``last_a`` the
    circuit's last measured non-EV load (``measured_loads_a``), the least it counts.
    """
    n = len(tree.circuits)
    building_a = max(building_w, 0.0) / (3 * site.voltage_v)
    building = tree.index[site.building_circuit or site.root.id]

    own: dict[int, list[float]] = {
        tree.index[c]: list(a) for c, a in measured_loads_a(site, tree, readings, evs).items()
    }
    unusable = {r.circuit for r in readings if r.power_w is None} - {
        r.circuit for r in readings if r.power_w is not None
    }
    if unusable:
        room_a = [[0.0, 0.0, 0.0] for _ in range(n)]  # the stations' safe limits on each circuit and below
        for point in site.charging_points:
            safe = (safe_a or {}).get(point.id, 0.0)
            for c in tree.chain_of(point.circuit):
                for p in point.grid_phases:
                    room_a[c][p - 1] += safe
        for circuit in unusable:
            i = tree.index[circuit]
            fuse = tree.circuits[i].fuse_a
            last = (last_a or {}).get(circuit, (0.0, 0.0, 0.0))
            own[i] = [max(fuse[p] - room_a[i][p], last[p], 0.0) for p in range(3)]

    below = [[0.0, 0.0, 0.0] for _ in range(n)]  # the sum of the children's loads
    loads = [0.0] * (3 * n)
    for i in sorted(range(n), key=lambda j: -len(tree.chains[j])):  # leaves first, the root last
        est = below[i]
        if i == building:
            est = [max(a, building_a) for a in est]
        if i in own:
            est = [max(a, b) for a, b in zip(est, own[i], strict=True)]
        for p in GRID_PHASES:
            loads[constraint_index(i, p)] = est[p - 1]
        chain = tree.chains[i]
        if len(chain) > 1:
            parent = chain[1]
            for p in range(3):
                below[parent][p] += est[p]
    return loads

"""The circuit tree, checked and indexed: ancestors of every circuit, loads per circuit and phase.

Fuse constraints are indexed as ``circuit_index * 3 + (phase - 1)`` so that the split can keep its
headroom in one flat list. ``SiteError`` carries the path of the offending field, so that both the site
file loader and the ``allocate`` input report the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chargeflow.site.model import Circuit, Site
from chargeflow.units import GRID_PHASES


class SiteError(ValueError):
    """A site that cannot be built: ``path`` names the field (``circuits[2].parent``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def constraint_index(circuit_index: int, phase: int) -> int:
    return circuit_index * 3 + (phase - 1)


@dataclass(frozen=True, slots=True)
class CircuitTree:
    circuits: tuple[Circuit, ...]
    index: dict[str, int]
    #: for each circuit, its own index followed by its ancestors' up to the root
    chains: tuple[tuple[int, ...], ...]
    root_index: int
    _constraints: dict[tuple[str, tuple[int, ...]], tuple[int, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def build(cls, circuits: Sequence[Circuit], path: str = "circuits") -> CircuitTree:
        index: dict[str, int] = {}
        for i, c in enumerate(circuits):
            if c.id in index:
                raise SiteError(f"{path}[{i}].id", f"duplicate circuit id {c.id!r}")
            index[c.id] = i
            if any(f <= 0 for f in c.fuse_a):
                raise SiteError(f"{path}[{i}].max_current_a", "fuse ratings must be greater than 0 A")
        roots = [i for i, c in enumerate(circuits) if c.parent is None]
        if len(roots) != 1:
            raise SiteError(
                path, f"exactly one circuit must have no parent (the grid access point), found {len(roots)}"
            )
        for i, c in enumerate(circuits):
            if c.parent is not None and c.parent not in index:
                raise SiteError(f"{path}[{i}].parent", f"unknown circuit {c.parent!r}")
        chains: list[tuple[int, ...]] = []
        for i in range(len(circuits)):
            chain = [i]
            parent = circuits[i].parent
            while parent is not None:
                j = index[parent]
                if j in chain:
                    raise SiteError(f"{path}[{i}].parent", "the circuits form a loop")
                chain.append(j)
                parent = circuits[j].parent
            chains.append(tuple(chain))
        return cls(tuple(circuits), index, tuple(chains), roots[0])

    def chain_of(self, circuit_id: str) -> tuple[int, ...]:
        return self.chains[self.index[circuit_id]]

    def constraints_of(self, circuit_id: str, grid_phases: Iterable[int]) -> tuple[int, ...]:
        """The fuse constraints a load on ``grid_phases`` of ``circuit_id`` counts against."""
        key = (circuit_id, tuple(grid_phases))
        found = self._constraints.get(key)
        if found is None:
            found = tuple(constraint_index(c, p) for c in self.chain_of(circuit_id) for p in key[1])
            self._constraints[key] = found
        return found

    def fuse_limits(self) -> list[float]:
        return [c.fuse_a[p - 1] for c in self.circuits for p in GRID_PHASES]

    def constraint_name(self, k: int) -> str:
        return f"fuse:{self.circuits[k // 3].id}:L{k % 3 + 1}"

    def add_balanced_load(self, loads_a: list[float], circuit_id: str, current_a: float) -> None:
        """Add a load balanced over three phases (``current_a`` per phase) to a circuit and its ancestors."""
        for c in self.chain_of(circuit_id):
            for p in GRID_PHASES:
                loads_a[constraint_index(c, p)] += current_a


def check_site(site: Site, charging_points_path: str = "charging_points") -> CircuitTree:
    """Check the whole site's structure; return its circuit tree."""
    tree = CircuitTree.build(site.circuits)
    if site.grid.max_import_w < 0 or site.grid.max_export_w < 0:
        raise SiteError("grid", "import and export limits must be 0 W or more")
    if site.voltage_v <= 0:
        raise SiteError("voltage_v", "must be greater than 0 V")
    seen: set[str] = set()
    evses: dict[str, list[int | None]] = {}  # per station, its EVSE ids (None: the station's only one)
    for i, cp in enumerate(site.charging_points):
        where = f"{charging_points_path}[{i}]"
        if cp.id in seen:
            raise SiteError(f"{where}.id", f"duplicate charging point id {cp.id!r}")
        seen.add(cp.id)
        if not cp.auto:
            taken = evses.setdefault(cp.station, [])
            if cp.evse_id in taken or (taken and (cp.evse_id is None or None in taken)):
                what = f"EVSE {cp.evse_id}" if cp.evse_id is not None else "a station with one EVSE"
                raise SiteError(f"{where}.id", f"station {cp.station!r} is listed twice ({what})")
            if cp.evse_id is not None and cp.evse_id < 1:
                raise SiteError(f"{where}.evse", "EVSE ids start at 1")
            taken.append(cp.evse_id)
        _check_attached(tree, f"{where}.circuit", cp.circuit)
        if cp.phases not in (1, 2, 3):
            raise SiteError(f"{where}.phases", "must be 1, 2 or 3")
        if cp.l1_phase not in GRID_PHASES:
            raise SiteError(f"{where}.l1_phase", "must be 1, 2 or 3")
        if not 0 <= cp.min_current_a <= cp.max_current_a:
            raise SiteError(f"{where}.min_current_a", "must be between 0 A and max_current_a")
    if site.building_circuit is not None:
        _check_attached(tree, "building.circuit", site.building_circuit)
    for i, pv in enumerate(site.pv):
        _check_attached(tree, f"pv[{i}].circuit", pv.circuit)
    if site.ess is not None:
        ess = site.ess
        _check_attached(tree, "ess.circuit", ess.circuit)
        if ess.min_wh < 0 or (ess.capacity_wh is not None and ess.min_wh > ess.capacity_wh):
            raise SiteError("ess.min_wh", "must be between 0 Wh and capacity_wh")
        if ess.max_charge_w < 0 or ess.max_discharge_w < 0:
            raise SiteError("ess", "charge and discharge limits must be 0 W or more")
    return tree


def _check_attached(tree: CircuitTree, path: str, circuit_id: str) -> None:
    if circuit_id not in tree.index:
        raise SiteError(path, f"unknown circuit {circuit_id!r} (known: {', '.join(sorted(tree.index))})")


def building_loads_a(site: Site, tree: CircuitTree, consumption_w: float) -> list[float]:
    """The non-EV load on every fuse constraint, in A: the building's consumption, balanced over three
    phases on its circuit (the root where none is given). Generation is not counted: PV can vanish within
    seconds, faster than a control step, so it buys no fuse headroom."""
    loads = [0.0] * (3 * len(tree.circuits))
    circuit = site.building_circuit or site.root.id
    tree.add_balanced_load(loads, circuit, max(consumption_w, 0.0) / (3 * site.voltage_v))
    return loads

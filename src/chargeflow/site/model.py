"""The site as frozen dataclasses: what is wired where, and the limits of each part.

Only configuration lives here, never state: an ESS's stored energy or a building's load are measurements,
passed to the rules each step. Built from a validated site file (``site.config``) or from an ``allocate``
input; ``site.tree`` checks the structure and indexes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chargeflow.units import NOMINAL_VOLTAGE_V, grid_phases_of

PhaseTriple = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class GridConnection:
    """The grid access point's limits, P_max^grid in both directions (eq. 3.2.6.2 bounds |P_meter|)."""

    max_import_w: float
    max_export_w: float


@dataclass(frozen=True, slots=True)
class Circuit:
    """A node of the distribution tree; the root (no parent) is the grid access point.

    ``fuse_a`` is the fuse rating of each grid phase (L1, L2, L3) in A.
    """

    id: str
    parent: str | None
    fuse_a: PhaseTriple


@dataclass(frozen=True, slots=True)
class ChargingPoint:
    """A charging point (an EVSE of a station) on a circuit: its phases, its phase rotation and its
    current range.

    ``id`` names the point on the site (limits, reasons, the dashboard). ``station_id`` is the OCPP
    station it belongs to (None: the station is called ``id``), ``evse_id`` its EVSE there (1.6: its
    connector id; None: the station's only one, whatever number it reports). ``l1_phase`` is the grid phase
    its L1 is wired to. ``min_current_a`` is the least current at which it can charge (6 A for AC by
    IEC 61851), or 0 where any current works. ``auto`` marks a place kept for a station that registers
    itself (the site file's ``auto_register``): counted in every fuse's safe share from the start, taken by
    the first unknown station that connects.
    """

    id: str
    circuit: str
    phases: int = 3
    l1_phase: int = 1
    max_current_a: float = 32.0
    min_current_a: float = 6.0
    station_id: str | None = None
    evse_id: int | None = None
    auto: bool = False

    @property
    def grid_phases(self) -> tuple[int, ...]:
        return grid_phases_of(self.phases, self.l1_phase)

    @property
    def station(self) -> str:
        """The OCPP id of the station this point belongs to."""
        return self.station_id or self.id

    def serves(self, station_id: str, evse_id: int) -> bool:
        """This point is the EVSE ``evse_id`` of ``station_id``."""
        return self.station == station_id and (self.evse_id is None or self.evse_id == evse_id)


@dataclass(frozen=True, slots=True)
class Pv:
    id: str
    circuit: str
    peak_w: float


@dataclass(frozen=True, slots=True)
class Ess:
    """A stationary battery: energy bounds and power limits. Its power is balanced over three phases."""

    circuit: str
    capacity_wh: int | None  # None: not known, the battery is taken as never full
    min_wh: int
    max_charge_w: float
    max_discharge_w: float


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    grid: GridConnection
    circuits: tuple[Circuit, ...]
    charging_points: tuple[ChargingPoint, ...] = ()
    building_circuit: str | None = None
    pv: tuple[Pv, ...] = ()
    ess: Ess | None = None
    voltage_v: float = NOMINAL_VOLTAGE_V
    building_peak_w: float | None = None  # the building's peak load, to scale a load profile
    timezone: str = "UTC"  # local time of the site: profiles and time-of-day rules read it

    @property
    def root(self) -> Circuit:
        return next(c for c in self.circuits if c.parent is None)


def with_margin(site: Site, margin_pct: float) -> Site:
    """The site as a controller should see it: grid limits and fuses lowered by ``margin_pct``.

    A controller acts on readings that are a step old and noisy; the margin is what keeps the real limits
    when the load moves between two steps.
    """
    if not 0 <= margin_pct < 100:
        raise ValueError(f"margin_pct must be in [0, 100), not {margin_pct}")
    k = 1.0 - margin_pct / 100.0
    grid = GridConnection(site.grid.max_import_w * k, site.grid.max_export_w * k)
    circuits = tuple(
        Circuit(c.id, c.parent, (c.fuse_a[0] * k, c.fuse_a[1] * k, c.fuse_a[2] * k)) for c in site.circuits
    )
    return replace(site, grid=grid, circuits=circuits)

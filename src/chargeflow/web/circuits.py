"""The circuit tree with its fuses and the EVs' present load on each of its phases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chargeflow.site.model import Site
from chargeflow.web.live import ConnectorReading


@dataclass(frozen=True, slots=True)
class CircuitRow:
    id: str
    depth: int
    fuse_a: tuple[float, float, float]
    ev_load_a: tuple[float, float, float]  # on the grid's L1..L3, from the stations' meters
    stations: tuple[str, ...]


def circuit_rows(site: Site, reading: Callable[[str, int], ConnectorReading | None]) -> list[CircuitRow]:
    """Depth-first from the grid access point; a circuit's load includes everything below it."""
    own: dict[str, list[float]] = {c.id: [0.0, 0.0, 0.0] for c in site.circuits}
    for cp in site.charging_points:
        found = reading(cp.station, cp.evse_id or 1)
        if found is None:
            continue
        for station_phase, amps in enumerate(found.current_a):
            # the station's L1 is wired to grid phase l1_phase, its L2 and L3 follow in rotation
            own[cp.circuit][(cp.l1_phase - 1 + station_phase) % 3] += amps
    children: dict[str | None, list[str]] = {}
    for c in site.circuits:
        children.setdefault(c.parent, []).append(c.id)
    by_id = {c.id: c for c in site.circuits}

    def total(cid: str) -> list[float]:
        load = list(own[cid])
        for child in children.get(cid, []):
            load = [a + b for a, b in zip(load, total(child), strict=True)]
        return load

    rows: list[CircuitRow] = []

    def visit(cid: str, depth: int) -> None:
        load = total(cid)
        fuse = by_id[cid].fuse_a
        rows.append(
            CircuitRow(
                cid,
                depth,
                (fuse[0], fuse[1], fuse[2]),
                (load[0], load[1], load[2]),
                tuple(cp.id for cp in site.charging_points if cp.circuit == cid),
            )
        )
        for child in children.get(cid, []):
            visit(child, depth + 1)

    visit(site.root.id, 0)
    return rows

"""Each station's safe limit: the current it may draw with no one watching.

A station that loses the CSM (a crash, a cut cable, a silent EMS) keeps the last limit it was given. The
safe limit is the one that keeps every fuse and the grid access limit even if every station draws it at
once, with the building at its declared peak: each fuse's rating, less the building's share where it sits
on that fuse's path, split equally between the stations drawing on that phase below it; the grid's import
limit likewise over all the stations' phases. A station whose share is below its minimum current gets 0 A
(it cannot charge safely at all without the CSM). Pure: the site and the building's reserve in, amps out.
"""

from __future__ import annotations

import math

from chargeflow.site.model import Site
from chargeflow.site.tree import CircuitTree, building_loads_a, constraint_index


def safe_currents(site: Site, tree: CircuitTree, building_w: float = 0.0) -> dict[str, float]:
    """The safe current per charging point id, in A (0 where the fuses leave it less than its minimum)."""
    points = site.charging_points
    if not points:
        return {}
    reserve = building_loads_a(site, tree, building_w)
    users = [0] * len(reserve)  # stations drawing on each fuse constraint
    for point in points:
        for index in tree.constraints_of(point.circuit, point.grid_phases):
            users[index] += 1
    phases_in_all = sum(point.phases for point in points)
    grid_share = max(site.grid.max_import_w - max(building_w, 0.0), 0.0) / (site.voltage_v * phases_in_all)
    out: dict[str, float] = {}
    for point in points:
        current = min(point.max_current_a, grid_share)
        for c in tree.chain_of(point.circuit):
            for phase in point.grid_phases:
                i = constraint_index(c, phase)
                headroom = max(tree.circuits[c].fuse_a[phase - 1] - reserve[i], 0.0)
                current = min(current, headroom / users[i])
        out[point.id] = math.floor(current * 10) / 10 if current >= point.min_current_a else 0.0
    return out

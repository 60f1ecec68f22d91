"""ACN-Data sessions (the shared CSV tables) as ACN-Sim EVs, the way acnportal converts its own API data.

As in acnportal's ``acndata_events``: arrival and departure are floored to the simulation period counted
from the data's first local midnight; the energy the session asks of the simulation is what it actually
received (``delivered_energy``), since the drivers' own requests are missing for unclaimed sessions and
are often beyond what the car could take; each EV gets an ideal battery of that size and 6.6 kW (the ACN-Sim
paper's default battery power). Sessions at stations the site's network (Caltech's or JPL's) does not
have, sessions that would overlap an earlier one at the same station, and sessions shorter than one period
are dropped.
"""

from __future__ import annotations

import csv
import gzip
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chargeflow.bench.acn_bench import PERIOD_MIN, network_of

BATTERY_KW = 6.6


def evs_from_sessions(path: Path, site: str = "caltech") -> tuple[list[Any], datetime]:
    """The sessions of a CSV table as ACN-Sim EVs at ``site``'s stations, and the time their slot 0 stands
    for."""
    from acnportal import acnsim

    with gzip.open(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return [], datetime.fromisoformat("2019-01-01T00:00:00+00:00")
    arrivals = [datetime.fromisoformat(r["arrival"]) for r in rows]
    first = min(arrivals)
    origin = first.replace(hour=0, minute=0, second=0, microsecond=0)
    period = timedelta(minutes=PERIOD_MIN)
    stations = set(network_of(site).station_ids)
    busy_until: dict[str, int] = {}
    evs = []
    for r, arrival in sorted(zip(rows, arrivals, strict=True), key=lambda ra: ra[1]):
        station = r["station_id"]
        a = (arrival - origin) // period
        d = (datetime.fromisoformat(r["departure"]) - origin) // period
        energy = float(r["delivered_energy (kWh)"])
        if station not in stations or d <= a or energy <= 0 or a < busy_until.get(station, -1):
            continue
        busy_until[station] = d
        battery = acnsim.Battery(energy, 0, BATTERY_KW)
        evs.append(acnsim.EV(a, d, energy, station, r["session_id"], battery))
    return evs, origin

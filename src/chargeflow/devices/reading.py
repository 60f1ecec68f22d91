"""A device's reading and the rules for using it (pure): where in a JSON message the value is, its unit and
sign, whether it is plausible, and the building's load where only a grid meter exists (TF-EVC eq. 1.2.5.1).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chargeflow.site import bounds
from chargeflow.site.measurement import BuildingPower

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Reading:
    at: datetime
    power_w: float
    soc_pct: float | None = None
    current_a: tuple[float, float, float] | None = None  # per grid phase, where the meter gives it


def json_path(document: Any, path: str) -> Any:
    """The value at ``path`` (``$.ENERGY.Power``, ``$.em:0.total_act_power``, ``$.values[2]``); KeyError
    naming the step that is missing."""
    if not path.startswith("$"):
        raise ValueError(f"a JSON path starts with $: {path!r}")
    rest, position, value = path[1:], 0, document
    while position < len(rest):
        step = _STEP.match(rest, position)
        if step is None:
            raise ValueError(f"cannot read the JSON path {path!r} from {rest[position:]!r} on")
        key, index = step.group(1), step.group(2)
        if key is not None:
            if not isinstance(value, Mapping) or key not in value:
                raise KeyError(f"{path}: no {key!r} in the message")
            value = value[key]
        else:
            if not isinstance(value, Sequence) or isinstance(value, str) or int(index) >= len(value):
                raise KeyError(f"{path}: no element {index} in the message")
            value = value[int(index)]
        position = step.end()
    return value


def number(value: Any, what: str) -> float:
    """A finite number (JSON numbers or numeric strings); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} is not a number: {value!r}")
    try:
        out = float(value)
    except ValueError:
        raise ValueError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{what} is not finite: {value!r}")
    return out


def read_power(document: Any, path: str, unit: str, sign: int) -> float:
    """The power at ``path`` in W, signed as the role counts it."""
    value = number(json_path(document, path), path)
    return bounds.check_power_w(value * (1000.0 if unit == "kW" else 1.0) * sign, path)


def implausible(power_w: float, role: str, limit_w: float) -> str | None:
    """Why a reading cannot be true, or None: a jump past 1.5 × the limit it stands behind (the grid's,
    or the site's main fuse), a building or PV that runs the wrong way."""
    if not math.isfinite(power_w):
        return "not a number"
    if abs(power_w) > 1.5 * limit_w:
        return f"{power_w:.0f} W is past 1.5 × the {limit_w:.0f} W it stands behind"
    if role == "building" and power_w < -50.0:
        return f"a building cannot feed in {-power_w:.0f} W"
    if role == "pv" and power_w < -50.0:
        return f"PV cannot draw {-power_w:.0f} W"
    return None


def read_currents(document: Any, paths: Sequence[str]) -> tuple[float, float, float]:
    """The currents on L1, L2, L3 in A at three JSON paths."""
    a, b, c = (bounds.check_current_a(number(json_path(document, path), path), path, True) for path in paths)
    return (a, b, c)


def implausible_currents(current_a: Sequence[float], fuse_a: Sequence[float]) -> str | None:
    """Why per-phase currents cannot be true, or None: a negative one, or one past 1.5 × the fuse it
    stands behind on its phase (the site's main fuse)."""
    for phase, (current, fuse) in enumerate(zip(current_a, fuse_a, strict=True), start=1):
        if current < -0.5:
            return f"{current:.1f} A on L{phase} is negative"
        if current > 1.5 * fuse:
            return f"{current:.1f} A on L{phase} is past 1.5 × the {fuse:.0f} A fuse"
    return None


def building_from(
    grid_w: float | None, building_w: float | None, pv_w: float, ev_w: float, battery_w: float
) -> BuildingPower:
    """The building's consumption and generation: its own meter where it has one; else eq. 1.2.5.1, the
    grid's import less the EVs' draw plus the battery's discharge and the PV's production."""
    if building_w is not None:
        return BuildingPower(max(building_w, 0.0), max(pv_w, 0.0))
    if grid_w is None:
        raise ValueError("neither a grid nor a building meter")
    consumption = grid_w - ev_w + battery_w + max(pv_w, 0.0)
    return BuildingPower(max(consumption, 0.0), max(pv_w, 0.0) + max(-consumption, 0.0))

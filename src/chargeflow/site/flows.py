"""The site's power flows at one moment, as the control loop records them each step and the store keeps
them (``store.flows``) for the dashboard's history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FlowSample:
    """The site's power flows at one moment (positive grid: import; positive ESS: discharge), the power
    granted to the EVs and the reason code of the limit in force (``None``: none known)."""

    at: datetime
    grid_w: float
    building_w: float
    pv_w: float
    ess_w: float
    ev_w: float
    granted_w: float | None
    limit_reason: str | None = None

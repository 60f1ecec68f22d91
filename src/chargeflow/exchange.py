"""The messages that cross between actors (TF-EVC section 3.2.6).

Only P_needed and P_wished (CSM → EMS) and P_granted (EMS → CSM) cross the CSM↔EMS interface, each as a
short time series with timestamps and a validity window, so that the two can be separate systems with
clocks that disagree. A message is used only inside its validity window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DemandPoint:
    """P_needed and P_wished for the interval starting at ``start``."""

    start: datetime
    needed_w: float
    wished_w: float

    def __post_init__(self) -> None:
        if self.needed_w < 0 or self.wished_w < self.needed_w:
            raise ValueError(f"need 0 ≤ needed_w ≤ wished_w, got {self.needed_w} and {self.wished_w}")


@dataclass(frozen=True, slots=True)
class GrantPoint:
    """P_granted for the interval starting at ``start``."""

    start: datetime
    granted_w: float


@dataclass(frozen=True, slots=True)
class Validity:
    issued_at: datetime
    valid_until: datetime

    def holds_at(self, now: datetime) -> bool:
        return self.issued_at <= now < self.valid_until


@dataclass(frozen=True, slots=True)
class PowerDemand:
    """CSM → EMS: what the connected EVs need and wish, as a time series."""

    site_id: str
    validity: Validity
    points: tuple[DemandPoint, ...]


@dataclass(frozen=True, slots=True)
class PowerGrant:
    """EMS → CSM: the power the CSM may distribute, as a time series, and why it is not more."""

    site_id: str
    validity: Validity
    points: tuple[GrantPoint, ...]
    reason: str

"""The messages that cross between actors (TF-EVC section 3.2.6).

Only P_needed and P_wished (CSM → EMS) and P_granted (EMS → CSM) cross the CSM↔EMS interface, each as a
short time series with timestamps and a validity window, so that the two can be separate systems with
clocks that disagree. A message is used only inside its validity window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol


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


# --- The wire form: JSON objects, UTC times with Z, so that an EMS of another vendor can take the role ---

Json = dict[str, object]


def _utc(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _time(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise ExchangeError(f"{field}: expected a timestamp string")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise ExchangeError(f"{field}: not an ISO 8601 timestamp: {value!r}") from None
    if t.tzinfo is None:
        raise ExchangeError(f"{field}: timestamp without time zone: {value!r}")
    return t.astimezone(UTC)


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExchangeError(f"{field}: expected a number")
    return float(value)


class ExchangeError(ValueError):
    """A message that does not follow the exchange's wire form; names the field."""


def demand_to_json(m: PowerDemand) -> Json:
    return {
        "type": "demand",
        "site_id": m.site_id,
        "issued_at": _utc(m.validity.issued_at),
        "valid_until": _utc(m.validity.valid_until),
        "points": [
            {"start": _utc(p.start), "needed_w": p.needed_w, "wished_w": p.wished_w} for p in m.points
        ],
    }


def grant_to_json(m: PowerGrant) -> Json:
    return {
        "type": "grant",
        "site_id": m.site_id,
        "issued_at": _utc(m.validity.issued_at),
        "valid_until": _utc(m.validity.valid_until),
        "reason": m.reason,
        "points": [{"start": _utc(p.start), "granted_w": p.granted_w} for p in m.points],
    }


def _envelope(data: object, kind: str) -> tuple[dict[str, object], str, Validity, list[dict[str, object]]]:
    if not isinstance(data, dict) or data.get("type") != kind:
        raise ExchangeError(f"type: expected {kind!r}")
    site = data.get("site_id")
    if not isinstance(site, str) or not site:
        raise ExchangeError("site_id: expected a non-empty string")
    validity = Validity(
        _time(data.get("issued_at"), "issued_at"), _time(data.get("valid_until"), "valid_until")
    )
    points = data.get("points")
    if not isinstance(points, list) or not points or not all(isinstance(p, dict) for p in points):
        raise ExchangeError("points: expected a non-empty list of objects")
    return data, site, validity, points


def demand_from_json(data: object) -> PowerDemand:
    _, site, validity, points = _envelope(data, "demand")
    try:
        pts = tuple(
            DemandPoint(
                _time(p.get("start"), f"points[{i}].start"),
                _number(p.get("needed_w"), f"points[{i}].needed_w"),
                _number(p.get("wished_w"), f"points[{i}].wished_w"),
            )
            for i, p in enumerate(points)
        )
    except ValueError as err:
        raise ExchangeError(str(err)) from None
    return PowerDemand(site, validity, pts)


def grant_from_json(data: object) -> PowerGrant:
    raw, site, validity, points = _envelope(data, "grant")
    reason = raw.get("reason", "")
    pts = tuple(
        GrantPoint(
            _time(p.get("start"), f"points[{i}].start"), _number(p.get("granted_w"), f"points[{i}].granted_w")
        )
        for i, p in enumerate(points)
    )
    if any(p.granted_w < 0 for p in pts):
        raise ExchangeError("points: granted_w must be 0 W or more")
    return PowerGrant(site, validity, pts, str(reason))


def value_at(points: tuple[GrantPoint, ...], now: datetime) -> float | None:
    """P_granted in force at ``now``: the last point that has started; None before the first."""
    current = None
    for p in points:
        if p.start <= now:
            current = p.granted_w
    return current


class InMemoryExchange:
    """The exchange inside one process: each side publishes, the other reads the latest message.

    The same message types cross MQTT when the actors run apart (``protocols.mqtt.exchange``); both
    offer ``publish_demand``/``publish_grant`` and ``latest_demand``/``latest_grant``.
    """

    def __init__(self) -> None:
        self._demand: dict[str, PowerDemand] = {}
        self._grant: dict[str, PowerGrant] = {}

    async def publish_demand(self, demand: PowerDemand) -> None:
        self._demand[demand.site_id] = demand

    async def publish_grant(self, grant: PowerGrant) -> None:
        self._grant[grant.site_id] = grant

    def latest_demand(self, site_id: str) -> PowerDemand | None:
        return self._demand.get(site_id)

    def latest_grant(self, site_id: str) -> PowerGrant | None:
        return self._grant.get(site_id)


class ExchangeBus(Protocol):
    """What each actor needs of the exchange, in one process or across MQTT."""

    async def publish_demand(self, demand: PowerDemand) -> None: ...

    async def publish_grant(self, grant: PowerGrant) -> None: ...

    def latest_demand(self, site_id: str) -> PowerDemand | None: ...

    def latest_grant(self, site_id: str) -> PowerGrant | None: ...

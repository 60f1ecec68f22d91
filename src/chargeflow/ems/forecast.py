"""Expected arrivals from the site's own history: the same kind of day, the same time of day.

An online plan knows only the EVs that are there; the capacity it leaves for later goes to EVs it cannot see.
Giving the LP the EVs that usually come lets it choose, among the present EVs, those whose charging would
collide with the coming ones (same phase, same hours). The forecast is deliberately simple: each session of
the last ``days`` days of the same kind (working day or weekend) comes again at the same time of day, at the
same station, with the same stay, and with 1/n of its energy and of its current, n the number of such days
found — the average EV of that station and hour. A day with no history forecasts nothing.

Pure: time is in slots from a fixed origin (slot 0 at a local midnight), given by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Seen:
    station: int
    arrival_slot: int
    stay_slots: int
    energy_a_slots: float
    max_a: float


@dataclass(slots=True)
class ArrivalHistory:
    slots_per_day: int
    first_weekday: int  # weekday of slot 0 (Monday 0)
    days: int = 4
    _by_day: dict[int, list[Seen]] = field(default_factory=dict)
    _ids: set[str] = field(default_factory=set)

    def weekend(self, day: int) -> bool:
        return (self.first_weekday + day) % 7 >= 5

    def record(self, session_id: str, seen: Seen) -> bool:
        """Record a session once, when it is first seen; True when this was that first time."""
        if session_id in self._ids:
            return False
        self._ids.add(session_id)
        self._by_day.setdefault(seen.arrival_slot // self.slots_per_day, []).append(seen)
        return True

    def expected(self, now: int, horizon: int) -> list[tuple[int, float, int, int, float]]:
        """Expected arrivals after ``now`` within ``horizon`` slots, as (station, energy, start, end, max_a)
        with slots counted from ``now``."""
        spd = self.slots_per_day
        out: list[tuple[int, float, int, int, float]] = []
        today = now // spd
        for day in range(today, (now + horizon) // spd + 1):
            kind = self.weekend(day)
            past = [d for d in range(day - 1, max(day - 1 - 7 * self.days, -1), -1) if d < today]
            same = [d for d in past if self.weekend(d) == kind and d in self._by_day][: self.days]
            if not same:
                continue
            share = 1.0 / len(same)
            for d in same:
                for s in self._by_day[d]:
                    start = s.arrival_slot + (day - d) * spd - now
                    if 0 < start < horizon:
                        out.append(
                            (
                                s.station,
                                s.energy_a_slots * share,
                                start,
                                start + s.stay_slots,
                                s.max_a * share,
                            )
                        )
        return out


@dataclass(frozen=True, slots=True)
class ForecastError:
    """How far a forecast was from what happened, over ``n`` values: mean absolute error and mean error
    (bias: positive when the forecast was too high), in the values' unit, beside the mean of what
    happened."""

    mae: float
    bias: float
    n: int
    mean_actual: float


def forecast_error(forecast: list[float], actual: list[float]) -> ForecastError:
    if len(forecast) != len(actual):
        raise ValueError("forecast and actual differ in length")
    n = len(actual)
    if n == 0:
        return ForecastError(0.0, 0.0, 0, 0.0)
    diffs = [f - a for f, a in zip(forecast, actual, strict=True)]
    return ForecastError(sum(abs(d) for d in diffs) / n, sum(diffs) / n, n, sum(actual) / n)

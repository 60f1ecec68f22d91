"""The site's energy prices: time-of-use rules and day-ahead prices, per kWh, looked up by time.

Drivers' price caps compare against them (``csm.demand``: energy beyond ΔE_min is only wished while the
price is within the cap), and the optimiser plans with them. Day-ahead prices, where given, win over the
time-of-use rules for the period they cover; outside both, the default price holds. Rules are read in
the site's local time; a rule whose ``end`` is not after its ``start`` runs over midnight (22:00–06:00).

Pure: no I/O and no clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class TimeOfUse:
    weekdays: frozenset[int]  # Monday 0 … Sunday 6, the day the period starts
    start: time
    end: time
    per_kwh: Decimal

    def holds_at(self, local: datetime) -> bool:
        t = local.time()
        if self.start < self.end:
            return local.weekday() in self.weekdays and self.start <= t < self.end
        # over midnight: the evening part on one of its days, the morning part on the day after one
        if t >= self.start:
            return local.weekday() in self.weekdays
        return t < self.end and (local.weekday() - 1) % 7 in self.weekdays


@dataclass(frozen=True, slots=True)
class EnergyPrices:
    default_per_kwh: Decimal
    time_of_use: tuple[TimeOfUse, ...] = ()
    #: day-ahead prices: (start, price), sorted by start, each holding for ``period``
    day_ahead: tuple[tuple[datetime, Decimal], ...] = ()
    period: timedelta = timedelta(hours=1)
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        starts = [s for s, _ in self.day_ahead]
        if any(s.tzinfo is None for s in starts):
            raise ValueError("day-ahead prices need times with a UTC offset")
        if starts != sorted(starts):
            raise ValueError("day-ahead prices must be in time order")

    def at(self, t: datetime) -> Decimal:
        """The price per kWh at ``t`` (an aware datetime)."""
        if self.day_ahead:
            i = bisect.bisect_right(self.day_ahead, t, key=lambda row: row[0]) - 1
            if i >= 0 and t < self.day_ahead[i][0] + self.period:
                return self.day_ahead[i][1]
        local = t.astimezone(ZoneInfo(self.timezone))
        for rule in self.time_of_use:  # the first rule that holds
            if rule.holds_at(local):
                return rule.per_kwh
        return self.default_per_kwh

    def ahead(self, start: datetime, slot: timedelta, n: int) -> Sequence[Decimal]:
        """The price of each of ``n`` slots from ``start`` (taken at each slot's start): what a plan needs."""
        return [self.at(start + k * slot) for k in range(n)]

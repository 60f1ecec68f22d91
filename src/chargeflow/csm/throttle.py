"""Who may try again, and who may take a station's place (pure: the caller passes ``now``).

``FailureBudget`` is a token bucket of failures per key (a station id, a client address): ``burst``
failures at once, then one more every ``refill_s``. Once a key's budget is spent the caller refuses
at once, before any costly check (a PBKDF2 hash costs tens of milliseconds of CPU) — whether the
attempt would have been right or not, for otherwise the budget would only slow the wrong guesses a
little. A success does not refill the budget: a guesser that also knows one right password (its own
station's) must not earn guesses with it. Where the check takes time and attempts overlap, the caller
counts an attempt as failed *before* the check and ``refund``s it after a success, so that a burst of
concurrent attempts cannot all pass the budget before the first failure is counted.

The number of keys kept is bounded: when it is full, the keys whose budgets are whole again are
forgotten first, then the oldest; a flood of new addresses costs memory only up to ``max_keys``.

``may_replace`` is the rule for a second connection of a station that is connected already.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Budget:
    burst: int  # failures allowed at once
    refill_s: float  # one more failure allowed after each of these


@dataclass(slots=True)
class _Bucket:
    failures: float  # spent, of ``burst``; decays by one every ``refill_s``
    at: float  # when ``failures`` was last brought up to date


class FailureBudget:
    def __init__(self, budget: Budget, max_keys: int = 10_000) -> None:
        self.budget = budget
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def _spent(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        return max(0.0, bucket.failures - max(0.0, now - bucket.at) / self.budget.refill_s)

    def retry_after_s(self, key: str, now: float) -> int | None:
        """None while ``key`` may try; else the whole seconds until it may try again (at least 1)."""
        over = self._spent(key, now) - (self.budget.burst - 1)
        if over <= 0:
            return None
        return max(1, math.ceil(over * self.budget.refill_s))

    def failed(self, key: str, now: float) -> None:
        spent = self._spent(key, now)
        if key not in self._buckets and len(self._buckets) >= self._max_keys:
            self._forget(now)
        self._buckets[key] = _Bucket(min(spent + 1.0, float(self.budget.burst)), now)

    def refund(self, key: str, now: float) -> None:
        """Take back one failure counted ahead of a check that then succeeded."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._buckets[key] = _Bucket(max(0.0, self._spent(key, now) - 1.0), now)

    def _forget(self, now: float) -> None:
        self._buckets = {k: b for k, b in self._buckets.items() if self._spent(k, now) > 0}
        if len(self._buckets) >= self._max_keys:  # all still counting: keep the newer half
            newest = sorted(self._buckets.items(), key=lambda item: item[1].at)[self._max_keys // 2 :]
            self._buckets = dict(newest)

    def __len__(self) -> int:
        return len(self._buckets)


class Admission(enum.Enum):
    """How a connecting station proved who it is."""

    REFUSED = "refused"  # unknown, or a wrong or missing password
    OPEN = "open"  # a station known by its id alone (no password, no certificate): anyone may use the id
    VERIFIED = "verified"  # its password or client certificate checked
    REGISTERED = "registered"  # unknown, registered just now with the password it gave (auto-registration)


def may_replace(newcomer: Admission, current_quiet_s: float, live_window_s: float) -> bool:
    """Whether a new connection of a station may close the one it has.

    One that proved the station's credentials may: a station that reconnects while its old socket is
    half-open must not wait for that socket to time out. One that could not prove anything (the
    station is open) may only take the place of a connection that has been quiet for longer than
    ``live_window_s`` (the heartbeat interval and some slack): a live station is not displaced by
    whoever else knows its id, while a station whose old socket died still gets back in.
    """
    if newcomer in (Admission.VERIFIED, Admission.REGISTERED):
        return True
    if newcomer is Admission.OPEN:
        return current_quiet_s > live_window_s
    return False

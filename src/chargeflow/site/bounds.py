"""Physical bounds on every number that enters the site (pure): from a station, a driver, the API or a device.

A value outside them is not a fact about the site but a fault or an attack, and left unchecked it costs the
whole process, not only its sender (#13: a meter multiplier of 10^7 froze the event loop for 8.9 s, a
``wished_wh`` of 10^400 or a StartTransaction dated 9999-12-31 raised OverflowError and ended site control, a
session dated 0001-01-01 hung the dashboard above 2 GB). Each edge checks its values here and refuses with
its standard's error (an OCPP CALLERROR, an HTTP 422); the bounds are wide enough for any real site and
narrow enough that the arithmetic on them stays fast and exact.

``check_*`` return the value when it is in bounds and raise ``OutOfBounds`` (a ``ValueError``, so that
pydantic validators turn it into a 422) naming the quantity and its bound otherwise.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Final

# Power: the largest megawatt charger (MCS, 3.75 MW) and a medium-voltage site connection fit well below.
MAX_POWER_W: Final = 100e6
# Current per phase: MCS connectors carry up to 3,000 A.
MAX_CURRENT_A: Final = 5_000.0
# Energy: a meter register of 1 TWh is decades of a megawatt charger; exact as a float and as BIGINT.
MAX_ENERGY_WH: Final = 10**12
# A driver's price cap per kWh, in any currency the site bills in.
MAX_PRICE_PER_KWH: Final = 1_000
# Ids and counters the standard types as integers: PostgreSQL's INTEGER (2^31 - 1) is the narrowest column
# they are stored in; SQLite refuses 2^63 and above.
MAX_ID: Final = 2**31 - 1
# OCPP 2.0.1 unitOfMeasure.multiplier: real meters use -3..6 (mWh to GWh); a multiplier of 10^7 is a
# number of 10 million digits. Within ±9 every value times its multiplier stays a float.
MAX_MULTIPLIER: Final = 9
# Time: a station's clock that is years off (an RTC reset to 1970, a year 9999) is refused; an offline
# station may deliver transactions some weeks old, a clock may run a little fast.
MAX_AGE: Final = timedelta(days=5 * 366)
MAX_AHEAD: Final = timedelta(days=366)
# A charging session longer than this is a clock's fault, not a session: a view prices at most this much
# of it (a time-of-use tariff over 56 years from 1970 took 4 s per render, and over 2,000 years hung).
MAX_SESSION_LENGTH: Final = timedelta(days=31)


class OutOfBounds(ValueError):
    """A value outside its physical bound; the message names the quantity and the bound."""


def check_finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise OutOfBounds(f"{name} is not a finite number: {value!r}")
    return value


def _check_range(value: float, low: float, high: float, name: str, unit: str) -> float:
    check_finite(value, name)
    if not low <= value <= high:
        raise OutOfBounds(f"{name} {value!r} {unit} is outside [{low:g}, {high:g}] {unit}")
    return value


def check_power_w(value: float, name: str = "power", signed: bool = True) -> float:
    """A power in W; ``signed`` lets it be negative (export, discharge)."""
    return _check_range(value, -MAX_POWER_W if signed else 0.0, MAX_POWER_W, name, "W")


def check_current_a(value: float, name: str = "current", signed: bool = False) -> float:
    return _check_range(value, -MAX_CURRENT_A if signed else 0.0, MAX_CURRENT_A, name, "A")


def check_energy_wh(value: float, name: str = "energy", signed: bool = False) -> float:
    return _check_range(value, -MAX_ENERGY_WH if signed else 0, MAX_ENERGY_WH, name, "Wh")


def check_id(value: int, name: str = "id") -> int:
    """An id or counter that is stored in an INTEGER column (0 … 2^31 - 1)."""
    if not 0 <= value <= MAX_ID:
        raise OutOfBounds(f"{name} {value} is outside [0, {MAX_ID}]")
    return value


def check_multiplier(value: int) -> int:
    if not -MAX_MULTIPLIER <= value <= MAX_MULTIPLIER:
        raise OutOfBounds(f"multiplier {value} is outside [-{MAX_MULTIPLIER}, {MAX_MULTIPLIER}]")
    return value


def check_time(value: datetime, now: datetime, name: str = "timestamp") -> datetime:
    """A moment within ``MAX_AGE`` before and ``MAX_AHEAD`` after ``now`` (both timezone-aware)."""
    if not now - MAX_AGE <= value <= now + MAX_AHEAD:
        raise OutOfBounds(
            f"{name} {value.isoformat()} is not within {MAX_AGE.days} days before and "
            f"{MAX_AHEAD.days} days after {now.isoformat()}"
        )
    return value


def in_time_window(value: datetime, now: datetime) -> bool:
    return now - MAX_AGE <= value <= now + MAX_AHEAD


def clamp_time(value: datetime, now: datetime) -> datetime:
    """A stored moment brought into the window, for views that must render whatever was stored."""
    return min(max(value, now - MAX_AGE), now + MAX_AHEAD)


def finite_or_none(value: float | None) -> float | None:
    """A stored or live reading as a view shows it: a NaN or an infinity is no reading."""
    return value if value is not None and math.isfinite(value) else None


def has_nul(text: str) -> bool:
    """PostgreSQL's text types refuse the NUL character."""
    return "\x00" in text

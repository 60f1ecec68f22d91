"""Forecasts of PV generation and building load for the site plan (``ems.site_plan``), from the site's own
meter readings: simple on purpose, and scored (``ForecastScore``) so that a study says how far off they were.

PV: the shape of a clear day, scaled by what the array really gave lately. The sun's elevation follows from
latitude, longitude and UTC time with Spencer's series for the declination and the equation of time
(J. W. Spencer, "Fourier series representation of the position of the sun", Search 2(5), 1971), the clear-sky
irradiance on a horizontal plane from Haurwitz's model, GHI = 1098·cos Z·exp(−0.057 / cos Z) W/m²
(B. Haurwitz, J. Meteorology 2, 1945), normalised to 1 with the sun at the zenith. The forecast is
``peak_w · shape · k``, where k is the measured PV over the clear-sky PV of the last ``window_s`` of
daylight, clamped to [0, ``max_ratio``]: a cloudy morning forecasts a cloudy afternoon, a clear one a clear
one, and the night keeps the evening's k for the next morning. The ratio also absorbs what the model leaves
out (the array's tilt, soiling, the inverter): honest only as far as the recent past resembles the next hours.

Building: the mean of the same time-of-day slot over the last ``days`` days of the same kind — working day,
Saturday, Sunday or holiday — that were measured; where there are none yet, the last reading (persistence).

Pure: readings and times are arguments; the forecasters hold only what they were fed.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from chargeflow.ems.forecast import ForecastError, forecast_error

FloatArray = npt.NDArray[np.float64]

_HAURWITZ_ZENITH = math.exp(-0.057)  # Haurwitz's GHI / 1098 W/m² with the sun at the zenith


def epoch_s(t: datetime) -> float:
    if t.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return t.timestamp()


def cos_zenith(latitude_deg: float, longitude_deg: float, times_s: FloatArray) -> FloatArray:
    """cos of the sun's zenith angle (= sin of its elevation) at UTC epoch seconds ``times_s``."""
    t64 = np.asarray(np.floor(times_s), dtype="datetime64[s]")
    day = t64.astype("datetime64[D]")
    day_of_year = (day - t64.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.float64)
    minutes = (t64 - day).astype(np.float64) / 60.0
    g = 2 * np.pi / 365.0 * (day_of_year + (minutes / 60.0 - 12.0) / 24.0)  # the fractional year
    decl = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    eq_time_min = 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
    solar_min = minutes + eq_time_min + 4.0 * longitude_deg  # true solar time, in minutes
    hour_angle = np.radians(solar_min / 4.0 - 180.0)
    lat = math.radians(latitude_deg)
    out: FloatArray = math.sin(lat) * np.sin(decl) + math.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    return out


def clear_sky_shape(latitude_deg: float, longitude_deg: float, times_s: FloatArray) -> FloatArray:
    """Clear-sky irradiance on a horizontal plane (Haurwitz) relative to the sun at the zenith; 0 at night."""
    cz = cos_zenith(latitude_deg, longitude_deg, times_s)
    up = cz > 1e-3
    safe = np.where(up, cz, 1.0)
    out: FloatArray = np.where(up, safe * np.exp(-0.057 / safe) / _HAURWITZ_ZENITH, 0.0)
    return out


@dataclass(slots=True)
class PvForecaster:
    """Clear-sky PV of an array of ``peak_w`` at a place, scaled by its recent measured output."""

    latitude_deg: float
    longitude_deg: float
    peak_w: float
    window_s: float = 2 * 3600.0
    #: only readings with the clear-sky PV at least this share of the peak count for the ratio: at dawn and
    #: dusk the model's shape and the array's (tilt, horizon) differ most
    min_shape: float = 0.1
    max_ratio: float = 1.2
    ratio: float = 1.0  # the last learnt k; a clear sky until a reading says otherwise
    _recent: deque[tuple[float, float, float]] = field(default_factory=deque, repr=False)

    def observe(self, at: datetime, pv_w: float) -> None:
        t = epoch_s(at)
        shape = float(clear_sky_shape(self.latitude_deg, self.longitude_deg, np.array([t]))[0])
        if shape >= self.min_shape:
            self._recent.append((t, max(pv_w, 0.0), self.peak_w * shape))
        while self._recent and self._recent[0][0] < t - self.window_s:
            self._recent.popleft()
        clear = sum(c for _, _, c in self._recent)
        if clear > 0:
            measured = sum(m for _, m, _ in self._recent)
            self.ratio = min(max(measured / clear, 0.0), self.max_ratio)

    def forecast(self, times_s: FloatArray) -> FloatArray:
        """PV in W at UTC epoch seconds ``times_s`` (take the middle of each slot)."""
        out: FloatArray = (
            self.peak_w * self.ratio * clear_sky_shape(self.latitude_deg, self.longitude_deg, times_s)
        )
        return out


WORKING_DAY, SATURDAY, SUNDAY_OR_HOLIDAY = 0, 1, 2


@dataclass(slots=True)
class BuildingForecaster:
    """Building load by kind of day and time-of-day slot (local time of ``timezone``)."""

    timezone: str
    slot_s: int = 900
    days: int = 4
    holidays: frozenset[date] = frozenset()
    keep_days: int = 60
    _zone: ZoneInfo = field(init=False, repr=False)
    _sums: dict[date, FloatArray] = field(default_factory=dict, repr=False)
    _counts: dict[date, FloatArray] = field(default_factory=dict, repr=False)
    _last_w: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if 86400 % self.slot_s:
            raise ValueError(f"slot_s must divide a day, got {self.slot_s}")
        self._zone = ZoneInfo(self.timezone)

    @property
    def slots_per_day(self) -> int:
        return 86400 // self.slot_s

    def kind(self, day: date) -> int:
        if day in self.holidays or day.weekday() == 6:
            return SUNDAY_OR_HOLIDAY
        return SATURDAY if day.weekday() == 5 else WORKING_DAY

    def _slot(self, t_s: float) -> tuple[date, int]:
        local = datetime.fromtimestamp(t_s, UTC).astimezone(self._zone)
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return local.date(), seconds // self.slot_s

    def observe(self, at: datetime, consumption_w: float) -> None:
        day, k = self._slot(epoch_s(at))
        if day not in self._sums:
            self._sums[day] = np.zeros(self.slots_per_day)
            self._counts[day] = np.zeros(self.slots_per_day)
            for old in [d for d in self._sums if (day - d).days > self.keep_days]:
                del self._sums[old], self._counts[old]
        self._sums[day][k] += consumption_w
        self._counts[day][k] += 1
        self._last_w = consumption_w

    def forecast(self, times_s: FloatArray) -> FloatArray:
        """Load in W at UTC epoch seconds ``times_s``: for each, the mean of its slot over the last ``days``
        measured days of its kind before its own day, else the last reading, else 0."""
        out = np.zeros(len(times_s))
        for i, t in enumerate(times_s.tolist()):
            day, k = self._slot(t)
            kind = self.kind(day)
            values = []
            for back in range(1, 7 * self.days + 8):
                d = date.fromordinal(day.toordinal() - back)
                counts = self._counts.get(d)
                if counts is not None and counts[k] > 0 and self.kind(d) == kind:
                    values.append(self._sums[d][k] / counts[k])
                    if len(values) == self.days:
                        break
            out[i] = sum(values) / len(values) if values else (self._last_w or 0.0)
        return out


@dataclass(slots=True)
class ForecastScore:
    """Forecasts made ``lead`` slots ahead against the mean of what was measured in the slot.

    ``predict`` files a forecast for a slot (by its index, epoch seconds // ``slot_s``); ``measure`` adds
    readings; a slot is scored once a reading of a later slot arrives.
    """

    slot_s: float
    _predicted: dict[int, float] = field(default_factory=dict, repr=False)
    _open: int | None = field(default=None, repr=False)
    _sum: float = field(default=0.0, repr=False)
    _n: int = field(default=0, repr=False)
    forecasts: list[float] = field(default_factory=list, repr=False)
    actuals: list[float] = field(default_factory=list, repr=False)

    def slot_of(self, t_s: float) -> int:
        return math.floor(t_s / self.slot_s)

    def predict(self, slot: int, value: float) -> None:
        self._predicted.setdefault(slot, value)

    def measure(self, at: datetime, value: float) -> None:
        slot = self.slot_of(epoch_s(at))
        if self._open is not None and slot != self._open:
            self._close()
        self._open = slot
        self._sum += value
        self._n += 1

    def _close(self) -> None:
        if self._open is not None and self._n and self._open in self._predicted:
            self.forecasts.append(self._predicted[self._open])
            self.actuals.append(self._sum / self._n)
        self._predicted = {s: v for s, v in self._predicted.items() if self._open is None or s > self._open}
        self._sum, self._n = 0.0, 0

    def error(self) -> ForecastError:
        return forecast_error(self.forecasts, self.actuals)

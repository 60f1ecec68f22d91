"""What a driver (or the owner) reads about one session: its state, its power and why, energy, cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal

from chargeflow.billing.cdr import MeterSample
from chargeflow.billing.estimate import Expectation, estimate
from chargeflow.billing.pricing import SessionCost
from chargeflow.billing.tariff import PriceComponent, Tariff, TariffDimensionType, TariffElement
from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import TransactionRecord
from chargeflow.csm.smart_charging import ChargingStep, StationLimit
from chargeflow.site import bounds
from chargeflow.web.live import ConnectorReading
from chargeflow.web.reasons import in_words

CHARGING_W = 100.0  # below this an EV is taken as not charging (meters report a few watts of noise)

STATE_WORDS = {
    "waiting": "Waiting for power",
    "charging": "Charging",
    "suspended_site": "Paused by the site",
    "suspended_ev": "Paused by the car",
    "done": "Done",
}


@dataclass(frozen=True, slots=True)
class SessionView:
    id: int
    station_id: str
    id_token: str | None
    state: str
    state_words: str
    power_w: float
    limit_a: float | None
    reason: str
    reason_words: str
    energy_wh: int
    expected_wh: int
    preferences: Preferences
    needs_met: bool | None  # None while the session runs
    cost: Decimal
    expected_cost: Decimal
    started_at: datetime
    stopped_at: datetime | None
    soc_pct: float | None


def limit_of(step: ChargingStep | None, tx: TransactionRecord) -> StationLimit | None:
    if step is None:
        return None
    return next((lim for lim in step.limits if lim.transaction_id == tx.id), None)


def state_of(tx: TransactionRecord, limit: StationLimit | None, power_w: float) -> str:
    if not tx.active:
        return "done"
    if power_w >= CHARGING_W:
        return "charging"
    if limit is None:
        return "waiting"
    if limit.current_a <= 0.0:
        return "suspended_site"
    return "suspended_ev"


def expected_energy_wh(energy_wh: int, power_w: float, now: datetime, prefs: Preferences) -> int:
    """At the present power until departure, but no more than the driver wishes."""
    hours = max((prefs.departure - now).total_seconds(), 0.0) / 3600.0
    return max(energy_wh, min(prefs.wished_wh, round(energy_wh + power_w * hours)))


def energy_tariff(
    price_per_kwh: Decimal, currency: str = "EUR", vat_percent: Decimal | None = None
) -> Tariff:
    """A tariff of one price per kWh, for a site that has set no other."""
    energy = PriceComponent(TariffDimensionType.ENERGY, price_per_kwh, vat_percent, 1)
    return Tariff(currency, (TariffElement((energy,)),))


def _amount(cost: SessionCost) -> Decimal:
    price = cost.total_cost
    amount = price.incl_vat if price.incl_vat is not None else price.excl_vat
    return amount.quantize(Decimal("0.01"), ROUND_HALF_UP)


def costs(
    tariff: Tariff,
    tx: TransactionRecord,
    energy_wh: int,
    expected_wh: int,
    now: datetime,
    prefs: Preferences,
    tz: tzinfo,
    readings: Sequence[MeterSample] | None = None,
) -> tuple[Decimal, Decimal]:
    """The cost so far and as expected at departure, priced by the same engine as the bill
    (``billing.estimate``), from the session's register ``readings`` up to now where given (so that a
    time-of-use tariff prices each kWh at the time it came), else its register at its start and now."""
    start_wh = tx.meter_start_wh or 0
    # A session stored with a start years away (a station's clock reset to 1970 or 0001 before the edge
    # checked it) is priced over its last ``MAX_SESSION_LENGTH`` only: priced over the years, its estimate
    # took seconds per render (1970) and hung the server above 2 GB (0001) (#13).
    end = bounds.clamp_time(tx.stopped_at or now, now)
    started = max(bounds.clamp_time(tx.started_at, now), end - bounds.MAX_SESSION_LENGTH)
    last = max(end, started)
    if started != tx.started_at or not all(
        started <= r.at and bounds.in_time_window(r.at, now) for r in readings or ()
    ):
        readings = None
    samples = [MeterSample(started, start_wh)]
    if readings:
        samples = list(readings)
    elif last > started:  # the engine wants strictly increasing times; a session just begun has one
        samples.append(MeterSample(last, start_wh + energy_wh))
    departure = max(bounds.clamp_time(prefs.departure, now), last)
    further = max(expected_wh - energy_wh, 0) if departure > last else 0
    expectation = None if not tx.active else Expectation(further, departure, departure)
    found = estimate(tariff, started, samples, tz, expectation)
    so_far = _amount(found.so_far)
    return so_far, _amount(found.projected) if found.projected is not None else so_far


def session_view(
    tx: TransactionRecord,
    step: ChargingStep | None,
    reading: ConnectorReading | None,
    prefs: Preferences,
    now: datetime,
    tariff: Tariff,
    tz: tzinfo,
    readings: Sequence[MeterSample] | None = None,
) -> SessionView:
    limit = limit_of(step, tx)
    # a NaN or infinite reading (a broken meter) is no reading: it made the dashboard answer 500 (#13)
    power = (bounds.finite_or_none(reading.power_w) or 0.0) if reading is not None and tx.active else 0.0
    energy = max(tx.energy_wh or 0, 0)
    expected = expected_energy_wh(energy, power, now, prefs) if tx.active else energy
    state = state_of(tx, limit, power)
    cost, expected_cost = costs(tariff, tx, energy, expected, now, prefs, tz, readings)
    fallback = step.fallback if step is not None else None
    reason = fallback or (limit.reason if limit is not None else "")
    return SessionView(
        id=tx.id,
        station_id=tx.station_id,
        id_token=tx.id_token,
        state=state,
        state_words=STATE_WORDS[state],
        power_w=power,
        limit_a=limit.current_a if limit is not None else None,
        reason=reason,
        reason_words=in_words(reason) if tx.active else "",
        energy_wh=energy,
        expected_wh=expected,
        preferences=prefs,
        needs_met=None if tx.active else energy >= prefs.needed_wh,
        cost=cost,
        expected_cost=expected_cost,
        started_at=tx.started_at,
        stopped_at=tx.stopped_at,
        soc_pct=bounds.finite_or_none(reading.soc_pct) if reading is not None else None,
    )

"""The price of a charging session under an OCPI 2.2.1 tariff: pure, Decimal throughout, no rounding of money.

The rules, with where OCPI 2.2.1 states them:

* Per charging period and per dimension, the first tariff element that has a price component of that
  dimension and whose restrictions all hold is used (mod_tariffs, Tariff object). No such element: that
  dimension is free in that period.
* FLAT is charged once per session: the first flat component that applies; a reservation's flat fee is
  charged once per reservation.
* ``step_size`` (mod_cdrs, CDR object, "step_size") is applied once per session to ENERGY, once to TIME and
  PARKING_TIME together, and once to reservation time. It rounds up the session total of the dimension,
  with the step of the last price component used for it, and the extra is billed at that last component's
  price. When both charging time and parking time are priced, only the total parking time is rounded.
* VAT per component; ``incl_vat`` is unknown (``None``) when a contributing component gives no VAT.
* ``min_price`` and ``max_price`` bound the total cost, excluding and including VAT separately (Tariff
  object, notes on min_price and max_price). The per-dimension totals are left as computed.
* Money is never rounded: OCPI leaves price rounding to law and contract (mod_tariffs, note on rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from decimal import ROUND_CEILING, Decimal
from enum import Enum

from chargeflow.billing.restrictions import Moment, ReservationState, holds, time_boundaries
from chargeflow.billing.tariff import (
    ZERO_PRICE,
    Price,
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffElement,
)

WH_PER_KWH = Decimal(1000)
SECONDS_PER_HOUR = Decimal(3600)
_ZERO = Decimal(0)
_MICROSECOND = timedelta(microseconds=1)


def exact_seconds(delta: timedelta) -> Decimal:
    """A duration in seconds as an exact Decimal (``total_seconds()`` is a float)."""
    return Decimal(delta // _MICROSECOND) / 1_000_000


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    """One OCPI charging period: what was used from ``start`` until the next period (or the session end).

    Energy is in Wh as a ``Decimal``, not an ``int``: an OCPI CDR gives kWh with decimals (the spec's own
    step_size example charges 115.2 Wh), and step_size rounding must see the amount unrounded. Periods
    built from our own meters (``cdr.py``) carry whole Wh.
    """

    start: datetime
    energy_wh: Decimal = _ZERO
    charging_s: Decimal = _ZERO  # OCPI TIME
    parking_s: Decimal = _ZERO  # OCPI PARKING_TIME
    reservation_s: Decimal = _ZERO  # OCPI RESERVATION_TIME
    current_a: Decimal | None = None  # OCPI CURRENT, summed over phases
    power_w: Decimal | None = None  # OCPI POWER; derived from energy and charging time when absent

    @property
    def is_reservation(self) -> bool:
        return self.reservation_s > 0

    def average_power_w(self) -> Decimal | None:
        if self.power_w is not None:
            return self.power_w
        if self.charging_s > 0:
            return self.energy_wh * SECONDS_PER_HOUR / self.charging_s
        return None


@dataclass(frozen=True, slots=True)
class Usage:
    """A session as the pricing sees it: its start and end and its charging periods in time order."""

    start: datetime
    end: datetime
    periods: tuple[ChargingPeriod, ...]

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("session start and end must be timezone-aware")
        if self.end < self.start:
            raise ValueError("session ends before it starts")
        starts = [p.start for p in self.periods]
        if starts != sorted(starts):
            raise ValueError("charging periods must be in time order")
        if starts and (starts[0] < self.start or starts[-1] > self.end):
            raise ValueError("charging periods must lie within the session")


class CostKind(Enum):
    ENERGY = "energy"
    TIME = "time"
    PARKING = "parking"
    FIXED = "fixed"
    RESERVATION = "reservation"


@dataclass(frozen=True, slots=True)
class PricedLine:
    """One priced piece of the session, for the audit trail: which period, element and volume."""

    period_index: int
    kind: CostKind
    element_index: int
    component: PriceComponent
    used: Decimal  # Wh for energy, seconds for time kinds, 1 for flat fees
    billed: Decimal  # after step_size rounding
    cost: Price


@dataclass(frozen=True, slots=True)
class UnsplitPeriod:
    """A period within which the active tariff elements change with the time of day, a date or the
    session's duration. OCPI obliges the CPO to start a new period there; the engine prices the whole
    period as at its start and reports the instant, so that the CDR can be corrected."""

    period_index: int
    at: datetime


@dataclass(frozen=True, slots=True)
class SessionCost:
    currency: str
    total_cost: Price
    by_kind: dict[CostKind, Price]
    total_energy_wh: Decimal
    total_time_s: Decimal  # the whole session, charging and not charging
    total_parking_s: Decimal
    lines: tuple[PricedLine, ...] = field(default_factory=tuple)
    unsplit: tuple[UnsplitPeriod, ...] = field(default_factory=tuple)
    tariff_valid_at_start: bool = True  # priced anyway: the caller chose the tariff

    def cost_of(self, kind: CostKind) -> Price:
        return self.by_kind.get(kind, ZERO_PRICE)


@dataclass(slots=True)
class _Piece:
    period_index: int
    kind: CostKind
    element_index: int
    component: PriceComponent
    used: Decimal
    billed: Decimal


def price_session(tariff: Tariff, usage: Usage, tz: tzinfo) -> SessionCost:
    """Price ``usage`` under ``tariff``; ``tz`` is the site's time zone for time-of-day and date rules."""
    pieces, unsplit = _pieces(tariff, usage, tz)
    _apply_step_size(pieces)
    lines = tuple(
        PricedLine(p.period_index, p.kind, p.element_index, p.component, p.used, p.billed, _cost(p))
        for p in pieces
    )
    by_kind = {kind: ZERO_PRICE for kind in CostKind}
    for line in lines:
        by_kind[line.kind] = by_kind[line.kind] + line.cost
    total = ZERO_PRICE
    for price in by_kind.values():
        total = total + price
    return SessionCost(
        currency=tariff.currency,
        total_cost=_bounded(total, tariff.min_price, tariff.max_price),
        by_kind=by_kind,
        total_energy_wh=sum((p.energy_wh for p in usage.periods), _ZERO),
        total_time_s=exact_seconds(usage.end - usage.start),
        total_parking_s=sum((p.parking_s for p in usage.periods), _ZERO),
        lines=lines,
        unsplit=tuple(unsplit),
        tariff_valid_at_start=tariff.valid_at(usage.start),
    )


def _pieces(tariff: Tariff, usage: Usage, tz: tzinfo) -> tuple[list[_Piece], list[UnsplitPeriod]]:
    periods = usage.periods
    expired = bool(periods) and all(p.is_reservation for p in periods)
    charging_start = next((p.start for p in periods if not p.is_reservation), usage.start)
    pieces: list[_Piece] = []
    unsplit: list[UnsplitPeriod] = []
    ends = [p.start for p in periods[1:]] + [usage.end]
    flat_charged = {False: False, True: False}  # keyed by "is a reservation period"
    energy_so_far = _ZERO
    for i, period in enumerate(periods):
        reserved = period.is_reservation
        if reserved:
            state = ReservationState.EXPIRED if expired else ReservationState.RESERVED
            since = usage.start
        else:
            state = ReservationState.NONE
            since = charging_start
        moment = Moment(
            local=period.start.astimezone(tz),
            energy_so_far_wh=energy_so_far,
            duration_so_far_s=max(exact_seconds(period.start - since), _ZERO),
            current_a=period.current_a,
            power_w=period.average_power_w(),
            reservation=state,
        )
        tariff_order = _in_precedence(tariff.elements, state)
        active = [(j, e) for j, e in tariff_order if holds(e.restrictions, moment)]
        for b in time_boundaries(tariff, since, period.start, ends[i], tz):
            later = replace(moment, local=b.astimezone(tz), duration_so_far_s=exact_seconds(b - since))
            if [j for j, e in active] != [j for j, e in tariff_order if holds(e.restrictions, later)]:
                unsplit.append(UnsplitPeriod(i, b))
        if reserved:
            wanted = [(CostKind.RESERVATION, TariffDimensionType.TIME, period.reservation_s)]
        else:
            wanted = [
                (CostKind.ENERGY, TariffDimensionType.ENERGY, period.energy_wh),
                (CostKind.TIME, TariffDimensionType.TIME, period.charging_s),
                (CostKind.PARKING, TariffDimensionType.PARKING_TIME, period.parking_s),
            ]
        if not flat_charged[reserved]:
            flat_kind = CostKind.RESERVATION if reserved else CostKind.FIXED
            wanted.append((flat_kind, TariffDimensionType.FLAT, Decimal(1)))
        for kind, dimension, used in wanted:
            found = _first_component(active, dimension)
            if found is not None and used > 0:
                pieces.append(_Piece(i, kind, found[0], found[1], used, used))
                flat_charged[reserved] |= dimension is TariffDimensionType.FLAT
        energy_so_far += period.energy_wh
    return pieces, unsplit


def _first_component(
    active: list[tuple[int, TariffElement]], dimension: TariffDimensionType
) -> tuple[int, PriceComponent] | None:
    for j, element in active:
        component = element.component(dimension)
        if component is not None:
            return j, component
    return None


def _in_precedence(
    elements: Sequence[TariffElement], state: ReservationState
) -> list[tuple[int, TariffElement]]:
    """Elements in the order they are tried. For an expired reservation, RESERVATION_EXPIRES elements come
    first (mod_tariffs, note on ReservationRestrictionType); otherwise the tariff's own order."""
    indexed = list(enumerate(elements))
    if state is ReservationState.EXPIRED:
        expires = ReservationRestrictionType.RESERVATION_EXPIRES
        indexed.sort(key=lambda je: je[1].restrictions.reservation is not expires)
    return indexed


def _apply_step_size(pieces: list[_Piece]) -> None:
    by_kind: dict[CostKind, list[_Piece]] = {kind: [] for kind in CostKind}
    for piece in pieces:
        by_kind[piece.kind].append(piece)
    _round_total(by_kind[CostKind.ENERGY])
    # TIME and PARKING_TIME share one rounding; with priced parking only the parking total is rounded.
    _round_total(by_kind[CostKind.PARKING] or by_kind[CostKind.TIME])
    _round_total([p for p in by_kind[CostKind.RESERVATION] if p.component.type is TariffDimensionType.TIME])


def _round_total(pieces: list[_Piece]) -> None:
    if not pieces:
        return
    last = pieces[-1]
    total = sum((p.used for p in pieces), _ZERO)
    last.billed += ceil_to_step(total, last.component.step_size) - total


def ceil_to_step(amount: Decimal, step: int) -> Decimal:
    """The smallest multiple of ``step`` that is not less than ``amount`` (OCPI PriceComponent.step_size)."""
    step = max(step, 1)  # 0 is not defined by OCPI; it is read as the finest step, 1
    return (amount / step).to_integral_value(rounding=ROUND_CEILING) * step


def _cost(piece: _Piece) -> Price:
    price = piece.component.price
    match piece.component.type:
        case TariffDimensionType.ENERGY:
            amount = price * piece.billed / WH_PER_KWH
        case TariffDimensionType.FLAT:
            amount = price
        case TariffDimensionType.TIME | TariffDimensionType.PARKING_TIME:
            amount = price * piece.billed / SECONDS_PER_HOUR
    return piece.component.with_vat(amount)


def _bounded(total: Price, low: Price | None, high: Price | None) -> Price:
    excl, incl = total.excl_vat, total.incl_vat
    if low is not None:
        excl = max(excl, low.excl_vat)
        if incl is not None and low.incl_vat is not None:
            incl = max(incl, low.incl_vat)
    if high is not None:
        excl = min(excl, high.excl_vat)
        if incl is not None and high.incl_vat is not None:
            incl = min(incl, high.incl_vat)
    return Price(excl, incl)

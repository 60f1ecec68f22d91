"""The OCPI 2.2.1 tariff model (module Tariffs, section 11.4) as frozen values.

A ``Tariff`` is a list of ``TariffElement``s; each element groups ``PriceComponent``s (one per dimension:
ENERGY, TIME, PARKING_TIME, FLAT) under optional ``TariffRestrictions`` that say when the element is active.
The JSON edge (``schema.py``) converts OCPI's units once: kWh → Wh, kW → W, so that names carry their unit
here. Money and amounts stay ``Decimal``; nothing is rounded in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum


class TariffDimensionType(StrEnum):
    """What a price component charges for, with the unit of its ``price`` and of its ``step_size``."""

    ENERGY = "ENERGY"  # price per kWh, step_size in Wh
    FLAT = "FLAT"  # price once per session, step_size without meaning
    PARKING_TIME = "PARKING_TIME"  # price per hour not charging, step_size in seconds
    TIME = "TIME"  # price per hour charging (or reserved, in a reservation element), step_size in seconds


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"

    @classmethod
    def of(cls, day: date) -> DayOfWeek:
        return _WEEK[day.weekday()]


_WEEK = tuple(DayOfWeek)


class ReservationRestrictionType(StrEnum):
    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class TariffType(StrEnum):
    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


@dataclass(frozen=True, slots=True)
class Price:
    """An amount of money excluding and including VAT.

    ``incl_vat`` is ``None`` when it cannot be known: OCPI distinguishes a price component without ``vat``
    from one with 0 % VAT, and its own example (first hour free) says that without VAT information the
    cost including VAT cannot be calculated.
    """

    excl_vat: Decimal
    incl_vat: Decimal | None

    def __add__(self, other: Price) -> Price:
        incl = None if self.incl_vat is None or other.incl_vat is None else self.incl_vat + other.incl_vat
        return Price(self.excl_vat + other.excl_vat, incl)


ZERO_PRICE = Price(Decimal(0), Decimal(0))


@dataclass(frozen=True, slots=True)
class PriceComponent:
    type: TariffDimensionType
    price: Decimal  # excl. VAT, per unit of ``type``
    vat_percent: Decimal | None
    step_size: int

    def with_vat(self, amount_excl_vat: Decimal) -> Price:
        if self.vat_percent is None:
            return Price(amount_excl_vat, None)
        return Price(amount_excl_vat, amount_excl_vat * (1 + self.vat_percent / 100))


@dataclass(frozen=True, slots=True)
class TariffRestrictions:
    """When an element is active (OCPI TariffRestrictions, with units in the names).

    Times and dates are local to the site. ``min_*`` bounds are inclusive and ``max_*`` bounds exclusive,
    as OCPI 2.2.1 states for dates, energy and duration; the same is used for current and power.
    """

    start_time: time | None = None
    end_time: time | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_energy_wh: Decimal | None = None
    max_energy_wh: Decimal | None = None
    min_current_a: Decimal | None = None
    max_current_a: Decimal | None = None
    min_power_w: Decimal | None = None
    max_power_w: Decimal | None = None
    min_duration_s: int | None = None
    max_duration_s: int | None = None
    day_of_week: frozenset[DayOfWeek] = field(default_factory=frozenset)
    reservation: ReservationRestrictionType | None = None


NO_RESTRICTIONS = TariffRestrictions()


@dataclass(frozen=True, slots=True)
class TariffElement:
    price_components: tuple[PriceComponent, ...]
    restrictions: TariffRestrictions = NO_RESTRICTIONS

    def component(self, dimension: TariffDimensionType) -> PriceComponent | None:
        """This element's component of ``dimension``; OCPI allows one per dimension, the first counts."""
        return next((c for c in self.price_components if c.type is dimension), None)


@dataclass(frozen=True, slots=True)
class Tariff:
    currency: str
    elements: tuple[TariffElement, ...]
    id: str | None = None
    country_code: str | None = None
    party_id: str | None = None
    type: TariffType | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None

    def valid_at(self, at: datetime) -> bool:
        """Whether the tariff is in force at ``at`` (start_date_time inclusive, end_date_time exclusive)."""
        return (self.start_date_time is None or at >= self.start_date_time) and (
            self.end_date_time is None or at < self.end_date_time
        )

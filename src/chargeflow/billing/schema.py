"""OCPI 2.2.1 JSON at the edge: Tariff and CDR objects validated once and turned into frozen values.

Every error names the source and the field path (``elements[0].price_components[1].step_size``). Numbers
should arrive as ``Decimal`` (``json.loads(text, parse_float=Decimal)``) so that prices stay exact. OCPI
DateTimes without a zone designator are UTC (OCPI 2.2.1, types, DateTime).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from chargeflow.billing.pricing import (
    SECONDS_PER_HOUR,
    WH_PER_KWH,
    ChargingPeriod,
    CostKind,
    SessionCost,
    Usage,
    exact_seconds,
)
from chargeflow.billing.tariff import (
    DayOfWeek,
    Price,
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    TariffType,
)
from chargeflow.site.config import format_validation_error


class BillingInputError(ValueError):
    """A tariff or CDR that cannot be used; the message names the source and the field."""


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _date(value: str) -> str:
    date.fromisoformat(value)  # rejects 2019-02-30, which the OCPI regex lets through
    return value


OcpiDateTime = Annotated[datetime, AfterValidator(_utc)]
NonNegative = Annotated[Decimal, Field(ge=0)]
TimeOfDay = Annotated[str, Field(pattern=r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$")]
Day = Annotated[str, Field(pattern=r"^[12][0-9]{3}-[0-9]{2}-[0-9]{2}$"), AfterValidator(_date)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceJson(_Strict):
    excl_vat: NonNegative
    incl_vat: NonNegative | None = None

    def to_price(self) -> Price:
        return Price(self.excl_vat, self.incl_vat)


class PriceComponentJson(_Strict):
    type: TariffDimensionType
    price: NonNegative
    vat: NonNegative | None = None
    step_size: Annotated[int, Field(ge=0)]


class RestrictionsJson(_Strict):
    start_time: TimeOfDay | None = None
    end_time: TimeOfDay | None = None
    start_date: Day | None = None
    end_date: Day | None = None
    min_kwh: NonNegative | None = None
    max_kwh: NonNegative | None = None
    min_current: NonNegative | None = None
    max_current: NonNegative | None = None
    min_power: NonNegative | None = None
    max_power: NonNegative | None = None
    min_duration: Annotated[int, Field(ge=0)] | None = None
    max_duration: Annotated[int, Field(ge=0)] | None = None
    day_of_week: list[DayOfWeek] = []
    reservation: ReservationRestrictionType | None = None

    def to_restrictions(self) -> TariffRestrictions:
        return TariffRestrictions(
            start_time=_time(self.start_time),
            end_time=_time(self.end_time),
            start_date=_day(self.start_date),
            end_date=_day(self.end_date),
            min_energy_wh=_scaled(self.min_kwh, WH_PER_KWH),
            max_energy_wh=_scaled(self.max_kwh, WH_PER_KWH),
            min_current_a=self.min_current,
            max_current_a=self.max_current,
            min_power_w=_scaled(self.min_power, WH_PER_KWH),
            max_power_w=_scaled(self.max_power, WH_PER_KWH),
            min_duration_s=self.min_duration,
            max_duration_s=self.max_duration,
            day_of_week=frozenset(self.day_of_week),
            reservation=self.reservation,
        )


class TariffElementJson(_Strict):
    price_components: list[PriceComponentJson] = Field(min_length=1)
    restrictions: RestrictionsJson | None = None


class TariffJson(BaseModel):
    # Fields the pricing does not use (tariff_alt_text, energy_mix, last_updated …) are accepted and ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)

    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")
    elements: list[TariffElementJson] = Field(min_length=1)
    id: str | None = Field(default=None, max_length=36)
    country_code: str | None = Field(default=None, min_length=2, max_length=2)
    party_id: str | None = Field(default=None, min_length=3, max_length=3)
    type: TariffType | None = None
    min_price: PriceJson | None = None
    max_price: PriceJson | None = None
    start_date_time: OcpiDateTime | None = None
    end_date_time: OcpiDateTime | None = None


class CdrDimensionType(StrEnum):
    CURRENT = "CURRENT"
    ENERGY = "ENERGY"
    ENERGY_EXPORT = "ENERGY_EXPORT"
    ENERGY_IMPORT = "ENERGY_IMPORT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    PARKING_TIME = "PARKING_TIME"
    POWER = "POWER"
    RESERVATION_TIME = "RESERVATION_TIME"
    STATE_OF_CHARGE = "STATE_OF_CHARGE"
    TIME = "TIME"


class CdrDimensionJson(_Strict):
    type: CdrDimensionType
    volume: NonNegative


class ChargingPeriodJson(_Strict):
    start_date_time: OcpiDateTime
    dimensions: list[CdrDimensionJson] = Field(min_length=1)
    tariff_id: str | None = Field(default=None, max_length=36)


class CdrJson(BaseModel):
    # A full OCPI CDR carries much more (cdr_token, cdr_location, totals …); pricing needs only these.
    model_config = ConfigDict(extra="ignore", frozen=True)

    start_date_time: OcpiDateTime
    end_date_time: OcpiDateTime
    charging_periods: list[ChargingPeriodJson] = Field(min_length=1)


def parse_tariff(data: Any, source: str = "tariff") -> Tariff:
    try:
        model = TariffJson.model_validate(data)
    except ValidationError as err:
        raise BillingInputError(format_validation_error(source, err)) from None
    elements = []
    for i, element in enumerate(model.elements):
        restrictions = element.restrictions or RestrictionsJson()
        for j, c in enumerate(element.price_components):
            if restrictions.reservation is not None and c.type not in _RESERVATION_DIMENSIONS:
                raise BillingInputError(
                    f"{source}: elements[{i}].price_components[{j}].type: a reservation element can only"
                    f" have FLAT and TIME components, not {c.type}"
                )
        components = tuple(
            PriceComponent(c.type, c.price, c.vat, c.step_size) for c in element.price_components
        )
        elements.append(TariffElement(components, restrictions.to_restrictions()))
    return Tariff(
        currency=model.currency,
        elements=tuple(elements),
        id=model.id,
        country_code=model.country_code,
        party_id=model.party_id,
        type=model.type,
        min_price=model.min_price.to_price() if model.min_price else None,
        max_price=model.max_price.to_price() if model.max_price else None,
        start_date_time=model.start_date_time,
        end_date_time=model.end_date_time,
    )


_RESERVATION_DIMENSIONS = (TariffDimensionType.FLAT, TariffDimensionType.TIME)


def parse_cdr_usage(data: Any, source: str = "cdr") -> Usage:
    """The start, end and charging periods of an OCPI CDR, checked for order, as a ``Usage``.

    A period that reports none of TIME, PARKING_TIME and RESERVATION_TIME counts as charging time for its
    whole length (from its start to the next period's start, the last one to the CDR's end).
    """
    try:
        model = CdrJson.model_validate(data)
    except ValidationError as err:
        raise BillingInputError(format_validation_error(source, err)) from None
    if model.end_date_time < model.start_date_time:
        raise BillingInputError(f"{source}: end_date_time: before start_date_time")
    periods = model.charging_periods
    previous = model.start_date_time
    for i, p in enumerate(periods):
        if p.start_date_time < previous:
            raise BillingInputError(
                f"{source}: charging_periods[{i}].start_date_time: before the previous period or the CDR's"
                " start_date_time; periods must be in time order"
            )
        previous = p.start_date_time
    if model.end_date_time < previous:
        raise BillingInputError(f"{source}: end_date_time: before the last charging period starts")
    ends = [p.start_date_time for p in periods[1:]] + [model.end_date_time]
    out = []
    for i, (p, end) in enumerate(zip(periods, ends, strict=True)):
        where = f"{source}: charging_periods[{i}]"
        volumes: dict[CdrDimensionType, Decimal] = {}
        for k, d in enumerate(p.dimensions):
            if d.type in volumes:
                raise BillingInputError(f"{where}.dimensions[{k}].type: {d.type} is given twice")
            volumes[d.type] = d.volume
        timed = {CdrDimensionType.TIME, CdrDimensionType.PARKING_TIME, CdrDimensionType.RESERVATION_TIME}
        length_s = exact_seconds(end - p.start_date_time)
        default_charging = length_s if not timed & volumes.keys() else None
        out.append(
            ChargingPeriod(
                start=p.start_date_time,
                energy_wh=volumes.get(CdrDimensionType.ENERGY, Decimal(0)) * WH_PER_KWH,
                charging_s=_hours_to_s(volumes.get(CdrDimensionType.TIME), default_charging),
                parking_s=_hours_to_s(volumes.get(CdrDimensionType.PARKING_TIME), None),
                reservation_s=_hours_to_s(volumes.get(CdrDimensionType.RESERVATION_TIME), None),
                current_a=volumes.get(CdrDimensionType.CURRENT),
                power_w=_scaled(volumes.get(CdrDimensionType.POWER), WH_PER_KWH),
            )
        )
    return Usage(model.start_date_time, model.end_date_time, tuple(out))


def _hours_to_s(hours: Decimal | None, default_s: Decimal | None) -> Decimal:
    if hours is not None:
        return hours * SECONDS_PER_HOUR
    return default_s if default_s is not None else Decimal(0)


def _scaled(value: Decimal | None, factor: Decimal) -> Decimal | None:
    return None if value is None else value * factor


def _time(value: str | None) -> time | None:
    return None if value is None else time.fromisoformat(value)


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def utc_text(t: datetime) -> str:
    """An OCPI DateTime: UTC with a ``Z``."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def decimal_text(amount: Decimal) -> str:
    """A Decimal as a plain decimal string, exact and without trailing zeros ("5.5", "0.029", "12")."""
    text = format(amount.normalize(), "f")
    return "0" if text in ("-0", "") else text


def price_json(price: Price) -> dict[str, str | None]:
    return {
        "excl_vat": decimal_text(price.excl_vat),
        "incl_vat": None if price.incl_vat is None else decimal_text(price.incl_vat),
    }


def session_cost_json(cost: SessionCost) -> dict[str, object]:
    """The totals of an OCPI CDR for ``cost``: money as exact decimal strings, volumes as numbers
    (energy in kWh, times in hours, as OCPI gives them)."""
    return {
        "currency": cost.currency,
        "total_cost": price_json(cost.total_cost),
        "total_energy_cost": price_json(cost.cost_of(CostKind.ENERGY)),
        "total_time_cost": price_json(cost.cost_of(CostKind.TIME)),
        "total_parking_cost": price_json(cost.cost_of(CostKind.PARKING)),
        "total_fixed_cost": price_json(cost.cost_of(CostKind.FIXED)),
        "total_reservation_cost": price_json(cost.cost_of(CostKind.RESERVATION)),
        "total_energy": float(cost.total_energy_wh / WH_PER_KWH),
        "total_time": float(cost.total_time_s / SECONDS_PER_HOUR),
        "total_parking_time": float(cost.total_parking_s / SECONDS_PER_HOUR),
        "warnings": _warnings(cost),
    }


_UNITS = {
    TariffDimensionType.ENERGY: "Wh",
    TariffDimensionType.TIME: "s",
    TariffDimensionType.PARKING_TIME: "s",
    TariffDimensionType.FLAT: "session",
}


def lines_json(cost: SessionCost) -> list[dict[str, object]]:
    """The audit trail: each priced piece with its period, element, amounts used and billed, and cost."""
    return [
        {
            "charging_period": line.period_index,
            "element": line.element_index,
            "kind": line.kind.value,
            "type": str(line.component.type),
            "used": decimal_text(line.used),
            "billed": decimal_text(line.billed),
            "unit": _UNITS[line.component.type],
            "price": decimal_text(line.component.price),
            "vat": None if line.component.vat_percent is None else decimal_text(line.component.vat_percent),
            "step_size": line.component.step_size,
            "cost": price_json(line.cost),
        }
        for line in cost.lines
    ]


def _warnings(cost: SessionCost) -> list[dict[str, object]]:
    out: list[dict[str, object]] = [
        {
            "code": "period_not_split",
            "charging_period": w.period_index,
            "at": utc_text(w.at),
            "message": f"charging_periods[{w.period_index}]: the active tariff elements change within this"
            " period; OCPI requires a new charging period there, so it is priced as at its start",
        }
        for w in cost.unsplit
    ]
    if not cost.tariff_valid_at_start:
        out.append(
            {
                "code": "tariff_not_valid_at_start",
                "message": "the session starts outside the tariff's start_date_time and end_date_time",
            }
        )
    return out

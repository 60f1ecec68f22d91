"""A tariff in words for the driver's page: each price as the driver pays it (VAT included where the
tariff states it) with when it applies. Words only here; the prices come from the tariff itself."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from chargeflow.billing.tariff import (
    DayOfWeek,
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffRestrictions,
)

_UNIT = {
    TariffDimensionType.ENERGY: "per kWh",
    TariffDimensionType.TIME: "per hour charging",
    TariffDimensionType.PARKING_TIME: "per hour parked after charging",
    TariffDimensionType.FLAT: "per session",
}
_DAYS = {d: d.value[:3].title() for d in DayOfWeek}


def _amount(component: PriceComponent) -> Decimal:
    price = component.with_vat(component.price)
    gross = price.incl_vat if price.incl_vat is not None else price.excl_vat
    return gross.quantize(Decimal("0.01"), ROUND_HALF_UP)


def _when(r: TariffRestrictions) -> str:
    parts = []
    if r.start_time is not None or r.end_time is not None:
        start = r.start_time.strftime("%H:%M") if r.start_time else "00:00"
        end = r.end_time.strftime("%H:%M") if r.end_time else "24:00"
        parts.append(f"{start}–{end}")
    if r.day_of_week:
        parts.append(", ".join(_DAYS[d] for d in DayOfWeek if d in r.day_of_week))
    if r.min_energy_wh is not None:
        parts.append(f"from {r.min_energy_wh / 1000:g} kWh")
    if r.max_energy_wh is not None:
        parts.append(f"up to {r.max_energy_wh / 1000:g} kWh")
    if r.min_duration_s is not None:
        parts.append(f"after {r.min_duration_s // 60} min")
    if r.max_duration_s is not None:
        parts.append(f"for the first {r.max_duration_s // 60} min")
    if any(v is not None for v in (r.min_current_a, r.max_current_a, r.min_power_w, r.max_power_w)):
        parts.append("depending on the charging power")
    return " ".join(parts)


def tariff_words(tariff: Tariff) -> list[str]:
    """One line per price, in the tariff's order: ``0.48 EUR per kWh 17:00–21:00 Mon, Tue``."""
    lines = []
    for element in tariff.elements:
        if element.restrictions.reservation is not None:
            continue
        when = _when(element.restrictions)
        for c in element.price_components:
            if c.price == 0 and c.type is not TariffDimensionType.ENERGY:
                continue
            line = f"{_amount(c)} {tariff.currency} {_UNIT[c.type]}"
            lines.append(f"{line}, {when}" if when else line)
    return lines

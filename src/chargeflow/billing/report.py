"""Accounting reports: sessions summed per period, station and id token, with the energy by source.

The rows are computed here and serialised to CSV or JSON text; fetching the sessions (``store/``) and
serving the files (``web/``) belong to other layers. Money is summed exactly and never rounded; rows never
mix currencies (the currency is always part of the key). Energy a session has no source shares for is
reported as ``unattributed_wh`` (a session without shares, or the part of it the live attribution did not
see, such as the last seconds before it stopped), so the source columns always add up to the energy column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from enum import StrEnum

from chargeflow.billing.attribution import Shares, Source
from chargeflow.billing.cdr import Cdr
from chargeflow.billing.schema import decimal_text
from chargeflow.billing.tariff import Price


class Key(StrEnum):
    DAY = "day"  # local date at the site, YYYY-MM-DD
    MONTH = "month"  # local month, YYYY-MM
    STATION = "station"  # EVSE id
    TOKEN = "id_token"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """What a report needs of one finished session."""

    cdr_id: str
    evse_id: str
    id_token: str
    start: datetime
    currency: str
    energy_wh: int
    cost: Price
    sources: Shares | None = None


def record_of(cdr: Cdr, sources: Shares | None = None) -> SessionRecord:
    s = cdr.session
    return SessionRecord(
        cdr.id,
        s.evse_id,
        s.id_token,
        s.start,
        cdr.cost.currency,
        cdr.total_energy_wh,
        cdr.cost.total_cost,
        sources,
    )


@dataclass(frozen=True, slots=True)
class ReportRow:
    key: dict[str, str]
    currency: str
    sessions: int
    energy_wh: int
    pv_wh: int
    battery_wh: int
    grid_wh: int
    unattributed_wh: int
    cost_excl_vat: Decimal
    cost_incl_vat: Decimal | None  # unknown when a session's price incl. VAT is unknown


def build_report(records: Iterable[SessionRecord], by: Sequence[Key], tz: tzinfo) -> list[ReportRow]:
    """One row per distinct key (and currency), in key order."""
    groups: dict[tuple[tuple[str, ...], str], list[SessionRecord]] = {}
    for r in records:
        groups.setdefault((tuple(_key(r, k, tz) for k in by), r.currency), []).append(r)
    return [
        _row(dict(zip(by, key, strict=True)), currency, rs) for (key, currency), rs in sorted(groups.items())
    ]


def report_json(rows: Sequence[ReportRow]) -> list[dict[str, object]]:
    """Rows as JSON values: money as exact decimal strings, energy as integer Wh."""
    return [{**row.key, **_fields(row)} for row in rows]


def report_csv(rows: Sequence[ReportRow], by: Sequence[Key]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*(str(k) for k in by), *_FIELDS])
    for row in rows:
        fields = _fields(row)
        writer.writerow(
            [*(row.key[k] for k in by), *("" if fields[f] is None else fields[f] for f in _FIELDS)]
        )
    return out.getvalue()


_FIELDS = (
    "currency",
    "sessions",
    "energy_wh",
    "pv_wh",
    "battery_wh",
    "grid_wh",
    "unattributed_wh",
    "cost_excl_vat",
    "cost_incl_vat",
)


def _fields(row: ReportRow) -> dict[str, object]:
    return {
        "currency": row.currency,
        "sessions": row.sessions,
        "energy_wh": row.energy_wh,
        "pv_wh": row.pv_wh,
        "battery_wh": row.battery_wh,
        "grid_wh": row.grid_wh,
        "unattributed_wh": row.unattributed_wh,
        "cost_excl_vat": decimal_text(row.cost_excl_vat),
        "cost_incl_vat": None if row.cost_incl_vat is None else decimal_text(row.cost_incl_vat),
    }


def _key(r: SessionRecord, k: Key, tz: tzinfo) -> str:
    match k:
        case Key.DAY:
            return r.start.astimezone(tz).date().isoformat()
        case Key.MONTH:
            return r.start.astimezone(tz).strftime("%Y-%m")
        case Key.STATION:
            return r.evse_id
        case Key.TOKEN:
            return r.id_token


def _row(key: dict[Key, str], currency: str, records: list[SessionRecord]) -> ReportRow:
    by_source = {s: 0 for s in Source}
    cost = Price(Decimal(0), Decimal(0))
    for r in records:
        if r.sources is not None:
            if r.sources.total_wh > r.energy_wh:
                raise ValueError(f"{r.cdr_id}: source shares of {r.sources.total_wh} Wh for {r.energy_wh} Wh")
            for s in Source:
                by_source[s] += r.sources.of(s)
        cost = cost + r.cost
    energy = sum(r.energy_wh for r in records)
    return ReportRow(
        key={str(k): v for k, v in key.items()},
        currency=currency,
        sessions=len(records),
        energy_wh=energy,
        pv_wh=by_source[Source.PV],
        battery_wh=by_source[Source.BATTERY],
        grid_wh=by_source[Source.GRID],
        unattributed_wh=energy - sum(by_source.values()),
        cost_excl_vat=cost.excl_vat,
        cost_incl_vat=cost.incl_vat,
    )

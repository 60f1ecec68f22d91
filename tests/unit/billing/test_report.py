from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from chargeflow.billing.attribution import Shares, Source
from chargeflow.billing.cdr import FinishedSession, MeterSample, build_cdr
from chargeflow.billing.report import Key, SessionRecord, build_report, record_of, report_csv, report_json

from .builders import comp, element, eur, tariff

VIENNA = ZoneInfo("Europe/Vienna")


def shares(pv: int, battery: int, grid: int) -> Shares:
    return Shares({Source.PV: pv, Source.BATTERY: battery, Source.GRID: grid})


RECORDS = [
    # 23:30 UTC on 31 October is 1 November in Vienna.
    SessionRecord(
        "c1",
        "E1",
        "tokA",
        datetime(2026, 10, 31, 23, 30, tzinfo=UTC),
        "EUR",
        10_000,
        eur("3.00", "3.60"),
        shares(6000, 1000, 3000),
    ),
    SessionRecord(
        "c2",
        "E1",
        "tokB",
        datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
        "EUR",
        5_000,
        eur("1.50", "1.80"),
        shares(0, 0, 5000),
    ),
    SessionRecord(
        "c3", "E2", "tokA", datetime(2026, 11, 3, 8, 0, tzinfo=UTC), "EUR", 7_000, eur("2.10", None)
    ),
    SessionRecord(
        "c4",
        "E2",
        "tokA",
        datetime(2026, 10, 3, 8, 0, tzinfo=UTC),
        "EUR",
        2_000,
        eur("0.60", "0.72"),
        shares(2000, 0, 0),
    ),
]


def test_report_per_month_in_local_time() -> None:
    rows = build_report(RECORDS, [Key.MONTH], VIENNA)
    assert [(r.key, r.sessions, r.energy_wh) for r in rows] == [
        ({"month": "2026-10"}, 1, 2000),
        ({"month": "2026-11"}, 3, 22_000),
    ]
    november = rows[1]
    assert (november.pv_wh, november.battery_wh, november.grid_wh, november.unattributed_wh) == (
        6000,
        1000,
        8000,
        7000,
    )
    assert november.cost_excl_vat == Decimal("6.60")
    assert november.cost_incl_vat is None  # c3 has no price incl. VAT


def test_report_per_station_and_token_as_csv_and_json() -> None:
    by = [Key.STATION, Key.TOKEN]
    rows = build_report(RECORDS, by, VIENNA)
    assert report_csv(rows, by) == (
        "station,id_token,currency,sessions,energy_wh,pv_wh,battery_wh,grid_wh,unattributed_wh,cost_excl_vat,cost_incl_vat\n"
        "E1,tokA,EUR,1,10000,6000,1000,3000,0,3,3.6\n"
        "E1,tokB,EUR,1,5000,0,0,5000,0,1.5,1.8\n"
        "E2,tokA,EUR,2,9000,2000,0,0,7000,2.7,\n"
    )
    assert report_json(rows)[2] == {
        "station": "E2",
        "id_token": "tokA",
        "currency": "EUR",
        "sessions": 2,
        "energy_wh": 9000,
        "pv_wh": 2000,
        "battery_wh": 0,
        "grid_wh": 0,
        "unattributed_wh": 7000,
        "cost_excl_vat": "2.7",
        "cost_incl_vat": None,
    }


def test_currencies_are_never_added_up() -> None:
    chf = SessionRecord(
        "c5", "E1", "tokA", datetime(2026, 11, 5, tzinfo=UTC), "CHF", 1000, eur("0.40", "0.43")
    )
    rows = build_report([*RECORDS, chf], [Key.STATION], VIENNA)
    assert [(r.key["station"], r.currency) for r in rows] == [("E1", "CHF"), ("E1", "EUR"), ("E2", "EUR")]


def test_source_shares_must_not_exceed_the_energy() -> None:
    bad = SessionRecord(
        "c9", "E1", "t", datetime(2026, 11, 5, tzinfo=UTC), "EUR", 1000, eur("1", "1"), shares(1001, 0, 0)
    )
    with pytest.raises(ValueError, match="c9"):
        build_report([bad], [Key.DAY], VIENNA)


def test_energy_beyond_the_source_shares_is_unattributed() -> None:
    partial = SessionRecord(
        "c8", "E1", "t", datetime(2026, 11, 5, tzinfo=UTC), "EUR", 1000, eur("1", "1"), shares(600, 100, 0)
    )
    (row,) = build_report([partial], [Key.DAY], VIENNA)
    assert (row.pv_wh, row.battery_wh, row.grid_wh, row.unattributed_wh) == (600, 100, 0, 300)


def test_record_of_a_cdr() -> None:
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    session = FinishedSession(
        "s", "E3", "tokC", t0, t0.replace(hour=9), (MeterSample(t0, 0), MeterSample(t0.replace(hour=9), 4000))
    )
    cdr = build_cdr("c10", session, tariff(element(comp("ENERGY", "0.25", "20"))), VIENNA)
    record = record_of(cdr, shares(1000, 0, 3000))
    rows = build_report([record], [Key.DAY, Key.STATION], VIENNA)
    assert report_json(rows) == [
        {
            "day": "2026-11-02",
            "station": "E3",
            "currency": "EUR",
            "sessions": 1,
            "energy_wh": 4000,
            "pv_wh": 1000,
            "battery_wh": 0,
            "grid_wh": 3000,
            "unattributed_wh": 0,
            "cost_excl_vat": "1",
            "cost_incl_vat": "1.2",
        }
    ]

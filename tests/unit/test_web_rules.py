"""The web UI's own rules: reasons in words, a session's state and expectation, logins, links, circuits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import TransactionRecord
from chargeflow.csm.smart_charging import StationLimit
from chargeflow.site.model import ChargingPoint, Circuit, GridConnection, Site
from chargeflow.web.auth import DriverLinks, LoginThrottled, OwnerAuth
from chargeflow.web.circuits import circuit_rows
from chargeflow.web.driver import departure_at
from chargeflow.web.live import ConnectorReading
from chargeflow.web.reasons import in_words
from chargeflow.web.session_view import costs, energy_tariff, expected_energy_wh, state_of

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
TX = TransactionRecord(1, "cp1", 1, 1, NOW - timedelta(hours=1), 0, meter_stop_wh=3_000)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("fuse:garage:L2", "the fuse of circuit garage is full on phase L2"),
        ("ev_max", "the car's own maximum charging power"),
        ("fallback_no_valid_grant", "the site runs on a safe fixed current (no valid grant)"),
        ("suspended_overdraw", "paused by the site: the car drew more than it was allowed"),
        ("something_new", "something new"),
        ("", "no limit reported yet"),
    ],
)
def test_reason_codes_read_as_words(code: str, words: str) -> None:
    assert in_words(code) == words


def _limit(current_a: float) -> StationLimit:
    return StationLimit("cp1", 1, 1, current_a, "grid_import_limit", False, None)


def test_a_sessions_state_follows_its_power_and_limit() -> None:
    assert state_of(TX, None, 0.0) == "waiting"
    assert state_of(TX, _limit(16.0), 11_000.0) == "charging"
    assert state_of(TX, _limit(0.0), 0.0) == "suspended_site"
    assert state_of(TX, _limit(16.0), 0.0) == "suspended_ev"
    done = TransactionRecord(1, "cp1", 1, 1, NOW, 0, meter_stop_wh=10, stopped_at=NOW)
    assert state_of(done, _limit(16.0), 11_000.0) == "done"


def test_expected_energy_is_the_present_power_until_departure_capped_by_the_wish() -> None:
    prefs = Preferences(5_000, 20_000, NOW + timedelta(hours=2))
    assert expected_energy_wh(3_000, 4_000.0, NOW, prefs) == 11_000
    assert expected_energy_wh(3_000, 11_000.0, NOW, prefs) == 20_000
    assert expected_energy_wh(3_000, 11_000.0, NOW + timedelta(hours=3), prefs) == 3_000  # departed


def test_the_cost_so_far_and_expected_come_from_the_billing_engine() -> None:
    tariff = energy_tariff(Decimal("0.30"))
    prefs = Preferences(5_000, 20_000, NOW + timedelta(hours=2))
    assert costs(tariff, TX, 3_000, 11_000, NOW, prefs, UTC) == (Decimal("0.90"), Decimal("3.30"))
    ended = TransactionRecord(
        1, "cp1", 1, 1, NOW, 100, meter_stop_wh=2_100, stopped_at=NOW + timedelta(hours=1)
    )
    assert costs(tariff, ended, 2_000, 2_000, NOW, prefs, UTC) == (Decimal("0.60"), Decimal("0.60"))
    just_begun = TransactionRecord(2, "cp1", 1, 1, NOW, 0)
    assert costs(tariff, just_begun, 0, 5_000, NOW, prefs, UTC) == (Decimal("0.00"), Decimal("1.50"))


def test_owner_login_sessions_expire_and_check_their_csrf_token() -> None:
    auth = OwnerAuth("pw", lifetime=timedelta(hours=1))
    assert auth.login("PW", NOW) is None
    session_id = auth.login("pw", NOW)
    assert session_id is not None
    session = auth.session(session_id, NOW + timedelta(minutes=59))
    assert session is not None
    assert auth.csrf_ok(session, session.csrf)
    assert not auth.csrf_ok(session, None)
    assert not auth.csrf_ok(session, session.csrf[:-1])
    assert auth.session(session_id, NOW + timedelta(hours=1)) is None
    assert auth.session("made-up", NOW) is None


def test_wrong_passwords_lock_out_their_client_for_doubling_spells() -> None:
    auth = OwnerAuth("pw")
    for _ in range(4):
        assert auth.login("guess", NOW, "10.0.0.9") is None
    assert auth.login("guess", NOW, "10.0.0.9") is None  # the fifth: locked out for a minute
    with pytest.raises(LoginThrottled) as locked:
        auth.login("pw", NOW + timedelta(seconds=30), "10.0.0.9")  # not even the right password
    assert locked.value.retry_after_s == 30
    assert auth.login("pw", NOW, "192.168.1.2") is not None  # the owner elsewhere is not locked out
    assert auth.login("guess", NOW + timedelta(minutes=1), "10.0.0.9") is None  # sixth: two minutes
    with pytest.raises(LoginThrottled) as longer:
        auth.login("guess", NOW + timedelta(minutes=2), "10.0.0.9")
    assert longer.value.retry_after_s == 60
    assert auth.login("pw", NOW + timedelta(minutes=3), "10.0.0.9") is not None
    assert auth.login("guess", NOW + timedelta(minutes=3), "10.0.0.9") is None  # the count starts again
    assert auth.login("pw", NOW + timedelta(minutes=3), "10.0.0.9") is not None


def test_lockouts_stop_at_fifteen_minutes() -> None:
    auth = OwnerAuth("pw")
    at = NOW
    for _ in range(4):
        assert auth.login("guess", at, "a") is None
    spells = []
    for _ in range(8):
        assert auth.login("guess", at, "a") is None
        with pytest.raises(LoginThrottled) as locked:
            auth.login("guess", at, "a")
        spells.append(locked.value.retry_after_s)
        at += timedelta(seconds=locked.value.retry_after_s)
    assert spells == [60, 120, 240, 480, 900, 900, 900, 900]


def test_a_driver_link_opens_its_own_session_only() -> None:
    links = DriverLinks(b"x" * 32)
    assert links.allows(7, links.secret(7))
    assert not links.allows(8, links.secret(7))
    assert not links.allows(7, None)
    assert not DriverLinks(b"y" * 32).allows(7, links.secret(7))  # another server's key


def test_circuit_loads_add_up_the_tree_on_the_grid_phases_the_stations_are_wired_to() -> None:
    site = Site(
        "s",
        GridConnection(50_000, 0),
        (Circuit("main", None, (63.0, 63.0, 63.0)), Circuit("sub", "main", (32.0, 32.0, 32.0))),
        (ChargingPoint("a", "sub", phases=1, l1_phase=2), ChargingPoint("b", "main", l1_phase=1)),
    )
    readings = {
        "a": ConnectorReading(3_000, (13.0, 0.0, 0.0), None),
        "b": ConnectorReading(None, (6.0, 6.0, 6.0), None),
    }
    rows = circuit_rows(site, lambda station, _evse: readings.get(station))
    assert [(r.id, r.depth, r.stations) for r in rows] == [("main", 0, ("b",)), ("sub", 1, ("a",))]
    assert rows[1].ev_load_a == (0.0, 13.0, 0.0)
    assert rows[0].ev_load_a == (6.0, 19.0, 6.0)


def test_departure_is_the_next_time_the_sites_clock_shows_it() -> None:
    assert departure_at("17:30", NOW, "UTC") == datetime(2026, 5, 1, 17, 30, tzinfo=UTC)
    assert departure_at("08:00", NOW, "UTC") == datetime(2026, 5, 2, 8, 0, tzinfo=UTC)
    assert departure_at("17:30", NOW, "Europe/Vienna") == datetime(2026, 5, 1, 15, 30, tzinfo=UTC)


def test_the_driver_estimate_prices_each_kwh_at_the_time_the_register_shows_it_came() -> None:
    from chargeflow.billing.schema import parse_tariff
    from chargeflow.store.billing import register_readings
    from chargeflow.web.tariff_words import tariff_words

    tariff = parse_tariff(
        {
            "currency": "EUR",
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": "0.40", "vat": 0, "step_size": 1}],
                 "restrictions": {"start_time": "17:00", "end_time": "21:00"}},
                {"price_components": [{"type": "ENERGY", "price": "0.25", "vat": 0, "step_size": 1}]},
            ],
        }
    )  # fmt: skip
    t0 = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)
    now = t0 + timedelta(minutes=90)
    tx = TransactionRecord(1, "CP", 1, 1, t0, 0, meter_stop_wh=4000)
    from chargeflow.csm.model import MeterSample

    stored = [MeterSample(t0 + timedelta(minutes=60), "3000"), MeterSample(now, "4000")]
    prefs = Preferences(0, 4000, now)
    readings = register_readings(tx, stored, now)
    so_far, _ = costs(tariff, tx, 4000, 4000, now, prefs, UTC, readings)
    assert so_far == Decimal("1.15")  # 3 kWh before 17:00 at 0.25, 1 kWh after at 0.40
    two_points, _ = costs(tariff, tx, 4000, 4000, now, prefs, UTC)
    assert two_points == Decimal("1.20")  # spread evenly: 2.666 kWh at 0.25, 1.334 kWh at 0.40
    assert tariff_words(tariff) == ["0.40 EUR per kWh, 17:00–21:00", "0.25 EUR per kWh"]

"""Stations as they are in the site file: several EVSEs, places for stations that register themselves,
credentials; and the smart charging that maps each (station, EVSE) to its charging point."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chargeflow.cli import main
from chargeflow.clock import ManualClock
from chargeflow.csm import transactions
from chargeflow.csm.model import MeterSample, StartRequest
from chargeflow.csm.passwords import hash_password, verify_password
from chargeflow.csm.safe import safe_currents
from chargeflow.csm.smart_charging import TX_DEFAULT, TX_PROFILE, SmartCharging, SmartChargingConfig
from chargeflow.csm.split import Strategy
from chargeflow.ems.service import EmsConfig, EmsService
from chargeflow.exchange import InMemoryExchange
from chargeflow.protocols.ocpp.operations import profile_id_for
from chargeflow.protocols.ocpp.server import TlsSettings
from chargeflow.runtime.serve import certificate_pins
from chargeflow.site.config import ConfigError, parse_credentials, parse_site
from chargeflow.site.measurement import BuildingPower, SiteMeasurement
from chargeflow.site.model import Site
from chargeflow.site.tree import check_site
from chargeflow.store.memory import MemoryRepository
from tests.unit.test_control_services import FakeControl

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
HASH = hash_password("a-station-password-16", b"0123456789abcdef", 1000)


def site_data(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "grid": {"max_import_w": 40_000, "max_export_w": 0},
        "circuits": [
            {"id": "main", "parent": None, "max_current_a": 63},
            {"id": "garage", "parent": "main", "max_current_a": 32},
            {"id": "yard", "parent": "main", "max_current_a": 32},
        ],
        "charging_points": [{"id": "single", "circuit": "yard", "max_current_a": 16}],
        "stations": [
            {
                "id": "duo",
                "password_hash": HASH,
                "evses": [
                    {"evse": 1, "circuit": "garage", "l1_phase": 1, "max_current_a": 32},
                    {"evse": 2, "circuit": "yard", "phases": 1, "l1_phase": 2, "max_current_a": 16},
                ],
            }
        ],
    }
    data.update(extra)
    return data


def test_a_station_with_two_evses_is_two_points_on_their_own_circuits_and_phases() -> None:
    site = parse_site(site_data())
    points = {p.id: p for p in site.charging_points}
    assert set(points) == {"single", "duo/1", "duo/2"}
    assert (points["duo/1"].station, points["duo/1"].evse_id, points["duo/1"].circuit) == ("duo", 1, "garage")
    two = points["duo/2"]
    assert (two.station, two.evse_id, two.circuit, two.grid_phases) == ("duo", 2, "yard", (2,))
    assert two.serves("duo", 2)
    assert not two.serves("duo", 1)
    assert not two.serves("single", 2)
    assert points["single"].serves("single", 1)
    assert points["single"].serves("single", 2)


def test_credentials_come_with_the_stations() -> None:
    creds = {c.station_id: c for c in parse_credentials(site_data())}
    assert creds["duo"].password_hash == HASH
    assert verify_password("a-station-password-16", creds["duo"].password_hash)
    assert creds["single"].password_hash is None
    assert creds["single"].certificate_sha256 is None
    pinned = site_data()
    pinned["charging_points"][0]["certificate_sha256"] = ":".join(["AB"] * 32)
    (single,) = [c for c in parse_credentials(pinned) if c.station_id == "single"]
    assert single.certificate_sha256 == "ab" * 32


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stations": [{"id": "single", "evses": [{"evse": 1, "circuit": "main"}]}]}, "listed once"),
        ({"stations": [{"id": "x", "evses": [{"evse": 1, "circuit": "main"}] * 2}]}, "an EVSE twice"),
        ({"stations": [{"id": "x", "evses": []}]}, "at least 1 item"),
        (
            {"stations": [{"id": "x", "evses": [{"evse": 0, "circuit": "main"}]}]},
            "greater than or equal to 1",
        ),
        ({"stations": [{"id": "x:y", "evses": [{"evse": 1, "circuit": "main"}]}]}, "cannot be a station"),
        ({"stations": [{"id": "x" * 49, "evses": [{"evse": 1, "circuit": "main"}]}]}, "cannot be a station"),
        ({"stations": [{"id": "x", "evses": [{"evse": 1, "circuit": "attic"}]}]}, "unknown circuit 'attic'"),
        ({"stations": [{"id": "x", "password_hash": "secret", "evses": []}]}, "password_hash"),
        ({"charging_points": [{"id": "a", "circuit": "main", "certificate_sha256": "12"}]}, "64 hex digits"),
        ({"auto_register": {"circuit": "attic", "max_stations": 2}}, "unknown circuit 'attic'"),
        ({"auto_register": {"circuit": "main", "max_stations": 0}}, "greater than or equal to 1"),
    ],
)
def test_bad_stations_are_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_site(site_data(**change))


def test_places_for_stations_that_register_themselves_count_in_the_safe_shares() -> None:
    site = parse_site(site_data(auto_register={"circuit": "garage", "max_stations": 2, "max_current_a": 16}))
    places = [p for p in site.charging_points if p.auto]
    assert [p.id for p in places] == ["garage-auto-1", "garage-auto-2"]
    assert all(p.circuit == "garage" and p.phases == 3 for p in places)
    safe = safe_currents(site, check_site(site))
    # garage 32 A on each phase: duo/1 and the two places draw on all three → 10.6 A each (rounded down)
    assert safe["duo/1"] == safe["garage-auto-1"] == 10.6
    without = parse_site(site_data())
    assert safe_currents(without, check_site(without))["duo/1"] > 10.6


@dataclass
class Meter:
    clock: ManualClock

    async def read(self) -> SiteMeasurement:
        return SiteMeasurement(self.clock.now(), BuildingPower(0.0), None)


class Rig:
    def __init__(self, site: Site, strategy: Strategy = Strategy.EDF) -> None:
        self.clock = ManualClock(T0)
        bus = InMemoryExchange()
        meter = Meter(self.clock)
        self.control = FakeControl(connected=set())
        self.repo = MemoryRepository()
        config = SmartChargingConfig(step_s=10, safe_current_a=None, margin_pct=0.0, strategy=strategy)
        self.csm = SmartCharging(site, self.repo, bus, self.control, self.clock, config, meter)
        self.ems = EmsService(site, meter, bus, self.clock, EmsConfig(step_s=10, margin_pct=0.0))

    async def start(self, station: str, evse: int) -> int:
        start = StartRequest(station, evse, f"tag-{station}-{evse}", 0, self.clock.now())
        outcome = await self.repo.start_transaction(start, transactions.from_start(start))
        return outcome.transaction.id

    async def step(self) -> dict[tuple[str, int], tuple[float, str]]:
        await self.csm.publish_demand()
        await self.ems.step()
        result = await self.csm.apply()
        self.clock.advance(timedelta(seconds=10))
        return {(lim.station_id, lim.evse_id): (lim.current_a, lim.reason) for lim in result.limits}


async def test_each_evse_of_a_station_holds_its_own_safe_default_and_gets_its_own_limit() -> None:
    site = parse_site(site_data())
    rig = Rig(site)
    rig.control.connected = {"duo", "single"}
    await rig.csm.send_safe_defaults()
    safe = rig.csm.safe_a
    defaults = {(s, e): a for s, e, a, purpose in rig.control.sent if purpose == TX_DEFAULT}
    # the two-EVSE station gets one TxDefault on each EVSE, the one-EVSE station one for all (EVSE 0)
    assert defaults == {("duo", 1): safe["duo/1"], ("duo", 2): safe["duo/2"], ("single", 0): safe["single"]}
    assert safe["duo/1"] != safe["duo/2"]  # different circuits and phases: different shares
    await rig.start("duo", 1)
    await rig.start("duo", 2)
    limits = await rig.step()
    # EVSE 2 is single-phase on yard's L2 with a 16 A station maximum; EVSE 1 three-phase on the garage
    assert limits[("duo", 2)][0] == 16.0
    assert limits[("duo", 1)][0] == 32.0
    tx = [(e, a) for s, e, a, purpose in rig.control.sent if purpose == TX_PROFILE and s == "duo"]
    assert sorted(tx) == [(1, 32.0), (2, 16.0)]


async def test_a_session_on_an_evse_the_file_does_not_list_is_held_at_zero() -> None:
    rig = Rig(parse_site(site_data()))
    rig.control.connected = {"duo"}
    await rig.start("duo", 3)
    limits = await rig.step()
    assert limits[("duo", 3)] == (0.0, "not_on_the_site")


async def test_stations_that_register_themselves_take_the_free_places_and_the_rest_are_held_at_zero() -> None:
    site = parse_site(site_data(auto_register={"circuit": "garage", "max_stations": 1, "max_current_a": 16}))
    rig = Rig(site)
    rig.control.connected = {"newcomer"}
    await rig.csm.send_safe_defaults()
    assert rig.csm.placed["newcomer"].id == "garage-auto-1"
    assert ("newcomer", 0, rig.csm.safe_a["garage-auto-1"], TX_DEFAULT) in rig.control.sent
    rig.control.connected = {"late"}  # the newcomer drops its connection: its place stays taken
    await rig.csm.send_safe_defaults()
    assert ("late", 0, 0.0, TX_DEFAULT) in rig.control.sent
    assert any("late is not in the site file" in e for e in rig.csm.events)
    rig.control.connected = {"newcomer", "late"}
    await rig.start("newcomer", 1)
    await rig.start("late", 1)
    limits = await rig.step()
    assert limits[("newcomer", 1)][0] == 16.0  # its place's maximum
    assert limits[("late", 1)] == (0.0, "not_on_the_site")
    # its meter values count like any other station's
    samples = [MeterSample(rig.clock.now(), "10", "Current.Import", f"L{p}") for p in (1, 2, 3)]
    rig.csm.live.observe("newcomer", 1, samples)
    await rig.csm.publish_demand()
    assert rig.csm.ev_power_w == pytest.approx(3 * 10 * 230)


def test_each_evse_has_its_own_profile_ids() -> None:
    assert [profile_id_for("TxProfile", e) for e in (0, 1, 2, 3)] == [3, 3, 23, 33]
    assert [profile_id_for("TxDefaultProfile", e) for e in (0, 1, 2)] == [2, 2, 22]
    ids = {
        profile_id_for(p, e)
        for p in ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
        for e in (1, 2, 3)
    }
    assert len(ids) == 9


def test_a_pinned_certificate_needs_security_profile_3() -> None:
    pinned = site_data()
    pinned["charging_points"][0]["certificate_sha256"] = "ab" * 32
    credentials = parse_credentials(pinned)
    with pytest.raises(ConfigError, match="security profile 3"):
        certificate_pins(credentials, None)
    with pytest.raises(ConfigError, match="single"):
        certificate_pins(credentials, TlsSettings(Path("c.pem"), Path("k.pem")))
    profile_3 = TlsSettings(Path("c.pem"), Path("k.pem"), client_ca_file=Path("ca.pem"))
    assert certificate_pins(credentials, profile_3) == {"single": "ab" * 32}
    assert certificate_pins(parse_credentials(site_data()), None) == {}


def test_station_password_prints_a_hash_the_site_file_takes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a-station-password-16\n"))
    assert main(["station-password"]) == 0
    printed = capsys.readouterr().out.strip()
    assert verify_password("a-station-password-16", printed)
    data = site_data()
    data["charging_points"][0]["password_hash"] = printed
    (single,) = [c for c in parse_credentials(data) if c.station_id == "single"]
    assert single.password_hash == printed
    monkeypatch.setattr("sys.stdin", io.StringIO("too-short\n"))
    assert main(["station-password"]) == 1
    assert "16 to 40 characters" in capsys.readouterr().err

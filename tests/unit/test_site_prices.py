"""The site's energy prices (``site.prices``), their section of the site file, and the live CSM's use of
them: drivers' price caps."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chargeflow.csm.demand import Preferences
from chargeflow.csm.smart_charging import ObservedRepository, SmartCharging, SmartChargingConfig
from chargeflow.site.config import ConfigError, parse_energy_prices
from chargeflow.site.prices import EnergyPrices, TimeOfUse
from tests.unit.test_control_services import SITE, T0, Rig

PEAK = TimeOfUse(frozenset(range(5)), time(7), time(20), Decimal("0.30"))
NIGHT = TimeOfUse(frozenset({0}), time(22), time(6), Decimal("0.16"))  # Monday nights only
VIENNA = "Europe/Vienna"


def vienna(day: int, hour: int, minute: int = 0) -> datetime:
    """A time of March 2026 in Vienna (UTC+1 then), as UTC: 2 March 2026 is a Monday."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC) - timedelta(hours=1)


def test_time_of_use_rules_hold_in_local_time_and_the_first_that_holds_wins() -> None:
    prices = EnergyPrices(Decimal("0.22"), (PEAK, NIGHT), timezone=VIENNA)
    assert prices.at(vienna(2, 7)) == Decimal("0.30")  # Monday 07:00 local = 06:00 UTC
    assert prices.at(vienna(2, 6, 59)) == Decimal("0.22")
    assert prices.at(vienna(2, 20)) == Decimal("0.22")  # the end is not in the period
    assert prices.at(vienna(7, 12)) == Decimal("0.22")  # Saturday


def test_a_period_over_midnight_belongs_to_the_day_it_starts() -> None:
    prices = EnergyPrices(Decimal("0.22"), (NIGHT,), timezone=VIENNA)
    assert prices.at(vienna(2, 23)) == Decimal("0.16")  # Monday night
    assert prices.at(vienna(3, 5, 59)) == Decimal("0.16")  # … until Tuesday 06:00
    assert prices.at(vienna(3, 6)) == Decimal("0.22")
    assert prices.at(vienna(2, 5)) == Decimal("0.22")  # Monday morning follows a Sunday night
    assert prices.at(vienna(3, 23)) == Decimal("0.22")  # Tuesday night is not in the rule


def test_day_ahead_prices_win_for_their_period_only() -> None:
    start = vienna(2, 12)
    prices = EnergyPrices(
        Decimal("0.22"),
        (PEAK,),
        ((start, Decimal("0.05")), (start + timedelta(hours=1), Decimal("-0.01"))),
        timezone=VIENNA,
    )
    assert prices.at(start - timedelta(minutes=1)) == Decimal("0.30")
    assert prices.at(start + timedelta(minutes=59)) == Decimal("0.05")
    assert prices.at(start + timedelta(minutes=60)) == Decimal("-0.01")  # negative prices exist
    assert prices.at(start + timedelta(hours=2)) == Decimal("0.30")  # past the last period: the rules
    assert prices.ahead(start, timedelta(minutes=30), 5) == [
        Decimal("0.05"),
        Decimal("0.05"),
        Decimal("-0.01"),
        Decimal("-0.01"),
        Decimal("0.30"),
    ]


def test_day_ahead_prices_need_aware_times_in_order() -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        EnergyPrices(Decimal(0), day_ahead=((T0.replace(tzinfo=None), Decimal(1)),))
    with pytest.raises(ValueError, match="time order"):
        EnergyPrices(Decimal(0), day_ahead=((T0, Decimal(1)), (T0 - timedelta(hours=1), Decimal(1))))


def site_file(**prices: Any) -> dict[str, Any]:
    return {
        "timezone": VIENNA,
        "grid": {"max_import_w": 40000, "max_export_w": 0},
        "circuits": [{"id": "main", "max_current_a": 80}],
        "energy_prices": prices,
    }


def test_the_site_file_section_with_a_day_ahead_file(tmp_path: Path) -> None:
    (tmp_path / "da.csv").write_text(
        "start,per_kwh\n2026-03-02T12:00:00+01:00,0.051\n2026-03-02T13:00:00+01:00,0.0625\n"
    )
    prices = parse_energy_prices(
        site_file(
            default_per_kwh=0.22,
            time_of_use=[{"days": ["mon"], "start": "07:00", "end": "20:00", "per_kwh": 0.3}],
            day_ahead_file="da.csv",
        ),
        "site.yaml",
        tmp_path,
    )
    assert prices is not None
    assert prices.at(vienna(2, 12, 30)) == Decimal("0.051")
    assert prices.at(vienna(2, 14)) == Decimal("0.3")
    assert prices.at(vienna(3, 12)) == Decimal("0.22")
    assert parse_energy_prices({k: v for k, v in site_file().items() if k != "energy_prices"}) is None


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("start,price\n2026-03-02T12:00:00+01:00,0.05\n", "line 2: expected the columns start,per_kwh"),
        ("start,per_kwh\n2026-03-02T12:00:00+01:00,cheap\n", "line 2:"),
        ("start,per_kwh\n2026-03-02T12:00:00,0.05\n", "line 2: 2026-03-02T12:00:00 has no UTC offset"),
        (
            "start,per_kwh\n2026-03-02T12:00:00+01:00,0.05\n2026-03-02T11:00:00+01:00,0.05\n",
            "line 3: 2026-03-02T11:00:00\\+01:00 is not after the line before",
        ),
    ],
)
def test_a_bad_day_ahead_file_is_named_with_its_line(tmp_path: Path, csv: str, message: str) -> None:
    (tmp_path / "da.csv").write_text(csv)
    with pytest.raises(ConfigError, match=rf"site\.yaml: energy_prices\.day_ahead_file: da\.csv, {message}"):
        parse_energy_prices(site_file(default_per_kwh=0.2, day_ahead_file="da.csv"), "site.yaml", tmp_path)


def test_bad_rules_and_a_missing_file_are_named() -> None:
    with pytest.raises(ConfigError, match=r"energy_prices\.time_of_use\[0\]\.days\[0\]"):
        parse_energy_prices(
            site_file(default_per_kwh=0.2, time_of_use=[{"days": ["monday"], "start": "7:00", "end": "8:00"}])
        )
    with pytest.raises(ConfigError, match=r"energy_prices\.default_per_kwh"):
        parse_energy_prices(site_file(default_per_kwh=-1))
    with pytest.raises(ConfigError, match=r"da\.csv: cannot read it"):
        parse_energy_prices(site_file(default_per_kwh=0.2, day_ahead_file="da.csv"), "s", Path("nowhere"))


@pytest.mark.parametrize(("price", "wished_w"), [("0.20", 2 * 32 * 690.0), ("0.40", 32 * 690.0)])
async def test_the_live_csm_wishes_beyond_the_need_only_within_the_drivers_cap(
    price: str, wished_w: float
) -> None:
    """cp1 needs 10 kWh within an hour at any price; cp2 wishes 30 kWh, but only up to 0.30 per kWh."""
    rig = Rig()
    config = SmartChargingConfig(step_s=10, margin_pct=0.0, prices=EnergyPrices(Decimal(price)))
    rig.csm = SmartCharging(SITE, rig.repo, rig.bus, rig.control, rig.clock, config, rig.meter)
    rig.observed = ObservedRepository(rig.repo, rig.csm.live.observe)
    now = rig.clock.now()
    cap = Decimal("0.30")
    rig.csm.set_preferences(await rig.start("cp1"), Preferences(10_000, 10_000, now + timedelta(hours=1)))
    rig.csm.set_preferences(
        await rig.start("cp2"), Preferences(0, 30_000, now + timedelta(hours=8), cap, cap)
    )
    table = await rig.csm.publish_demand()
    assert table.wished_w == pytest.approx(wished_w, abs=1.0)

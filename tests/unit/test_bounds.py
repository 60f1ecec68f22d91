"""The site's physical bounds (``site.bounds``) and the views that must render whatever was stored."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargeflow.billing.tariff import (
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
)
from chargeflow.csm.demand import Preferences
from chargeflow.csm.model import TransactionRecord
from chargeflow.site import bounds
from chargeflow.web.live import ConnectorReading
from chargeflow.web.session_view import session_view

NOW = datetime(2026, 12, 7, 10, tzinfo=UTC)
ENERGY = TariffDimensionType.ENERGY
#: night and day prices: the engine splits a session at each boundary, twice a day
TIME_OF_USE = Tariff(
    "EUR",
    (
        TariffElement(
            (PriceComponent(ENERGY, Decimal("0.20"), None, 1),),
            TariffRestrictions(start_time=clock_time(22), end_time=clock_time(6)),
        ),
        TariffElement((PriceComponent(ENERGY, Decimal("0.35"), None, 1),)),
    ),
)


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (bounds.check_power_w, math.nan),
        (bounds.check_power_w, math.inf),
        (bounds.check_power_w, 5.04e307),
        (bounds.check_current_a, 10_000.0),
        (bounds.check_current_a, -1.0),
        (bounds.check_energy_wh, 10**13),
        (bounds.check_energy_wh, -1),
    ],
)
def test_values_past_their_bound_are_refused_with_a_value_error(check: object, value: float) -> None:
    with pytest.raises(ValueError, match=r"outside|finite"):
        check(value)  # type: ignore[operator]


def test_ids_fit_postgresqls_integer() -> None:
    assert bounds.check_id(2**31 - 1) == 2**31 - 1
    for value in (2**31, 2**63, -1):
        with pytest.raises(bounds.OutOfBounds):
            bounds.check_id(value)


@given(st.datetimes(timezones=st.just(UTC)))
def test_the_time_window_and_its_clamp_agree(moment: datetime) -> None:
    clamped = bounds.clamp_time(moment, NOW)
    assert bounds.in_time_window(clamped, NOW)
    assert (clamped == moment) == bounds.in_time_window(moment, NOW)


@pytest.mark.parametrize(
    "started",
    [datetime(1970, 1, 1, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)],
    ids=["1970", "0001", "9999"],
)
def test_a_session_stored_with_a_reset_clock_is_priced_at_once(started: datetime) -> None:
    """Unbounded, a time-of-use estimate from 1970 took 4 s on the event loop per render (0001: no end)."""
    tx = TransactionRecord(1, "S", 1, 1, started, 0)
    prefs = Preferences(0, 30_000, NOW + timedelta(hours=8))
    began = time.perf_counter()
    view = session_view(tx, None, None, prefs, NOW, TIME_OF_USE, ZoneInfo("Europe/Vienna"))
    took = time.perf_counter() - began
    assert took < 1.0, f"{took:.2f} s"
    assert view.cost == Decimal("0.00")


def test_a_nan_reading_is_no_reading() -> None:
    tx = TransactionRecord(1, "S", 1, 1, NOW - timedelta(hours=1), 0)
    prefs = Preferences(0, 30_000, NOW + timedelta(hours=8))
    nan = ConnectorReading(math.nan, (math.nan,) * 3, math.nan)
    view = session_view(tx, None, nan, prefs, NOW, TIME_OF_USE, ZoneInfo("UTC"))
    assert (view.power_w, view.soc_pct, view.expected_wh) == (0.0, None, 0)

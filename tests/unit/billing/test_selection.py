from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chargeflow.billing.selection import TariffAssignment, select_tariff
from chargeflow.billing.tariff import Tariff, TariffType

from .builders import comp, element, tariff

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def named(tariff_id: str, **top: Any) -> Tariff:
    return tariff(element(comp("ENERGY", "0.30")), id=tariff_id, **top)


SITE = [
    TariffAssignment(named("public")),
    TariffAssignment(named("staff"), token_groups=frozenset({"staff"})),
    TariffAssignment(named("fast-dc"), evse_ids=frozenset({"DC1"})),
    TariffAssignment(named("staff-dc"), evse_ids=frozenset({"DC1"}), token_groups=frozenset({"staff"})),
    TariffAssignment(named("card", type="AD_HOC_PAYMENT")),
    TariffAssignment(named("green", type="PROFILE_GREEN")),
    TariffAssignment(
        named("summer", start_date_time="2026-07-01T00:00:00Z", end_date_time="2026-09-01T00:00:00Z"),
        evse_ids=frozenset({"AC1", "AC2"}),
    ),
]


def chosen(**session: Any) -> str | None:
    args: dict[str, Any] = {"evse_id": "AC1", "token_group": None, "start": START, **session}
    t = select_tariff(SITE, **args)
    return None if t is None else t.id


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        ({}, "public"),
        ({"token_group": "staff"}, "staff"),
        ({"evse_id": "DC1"}, "fast-dc"),
        ({"evse_id": "DC1", "token_group": "staff"}, "staff-dc"),  # the most specific assignment wins
        ({"evse_id": "DC1", "token_group": "guests"}, "fast-dc"),
        ({"ad_hoc": True}, "card"),  # card payment takes only the ad-hoc tariff
        ({"profile": TariffType.PROFILE_GREEN}, "green"),
        ({"profile": TariffType.PROFILE_CHEAP}, "public"),  # no cheap profile: the regular tariff
        ({"start": datetime(2026, 7, 15, tzinfo=UTC)}, "summer"),  # valid from 1 July, for AC1 and AC2
        ({"start": datetime(2026, 9, 1, tzinfo=UTC)}, "public"),  # end_date_time is exclusive
    ],
)
def test_select_tariff(session: dict[str, Any], expected: str) -> None:
    assert chosen(**session) == expected


def test_no_tariff_for_the_session() -> None:
    only_staff = [TariffAssignment(named("staff"), token_groups=frozenset({"staff"}))]
    assert select_tariff(only_staff, evse_id="AC1", token_group=None, start=START) is None
    assert select_tariff(only_staff, evse_id="AC1", token_group="staff", start=START, ad_hoc=True) is None

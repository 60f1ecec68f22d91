"""The CSM↔EMS messages on the wire (TF-EVC 3.2.6): JSON with UTC times, validity windows."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from chargeflow.exchange import (
    DemandPoint,
    ExchangeError,
    GrantPoint,
    InMemoryExchange,
    PowerDemand,
    PowerGrant,
    Validity,
    demand_from_json,
    demand_to_json,
    grant_from_json,
    grant_to_json,
    value_at,
)

T = datetime(2026, 1, 1, 8, tzinfo=UTC)
VALID = Validity(T, T + timedelta(seconds=30))


def test_messages_survive_the_wire_and_use_z_times() -> None:
    demand = PowerDemand("site", VALID, (DemandPoint(T, 5_000.0, 20_000.0),))
    text = json.dumps(demand_to_json(demand))
    assert '"issued_at": "2026-01-01T08:00:00Z"' in text
    assert demand_from_json(json.loads(text)) == demand
    grant = PowerGrant(
        "site", VALID, (GrantPoint(T, 12_000.0), GrantPoint(T + timedelta(seconds=10), 9_000.0)), "x"
    )
    assert grant_from_json(json.loads(json.dumps(grant_to_json(grant)))) == grant


def test_a_message_is_used_only_inside_its_validity_window() -> None:
    assert VALID.holds_at(T)
    assert VALID.holds_at(T + timedelta(seconds=29))
    assert not VALID.holds_at(T + timedelta(seconds=30))
    assert not VALID.holds_at(T - timedelta(seconds=1))  # a clock running ahead of ours


def test_the_grant_in_force_is_the_last_point_started() -> None:
    points = (GrantPoint(T, 12_000.0), GrantPoint(T + timedelta(seconds=10), 9_000.0))
    assert value_at(points, T - timedelta(seconds=1)) is None
    assert value_at(points, T + timedelta(seconds=5)) == 12_000.0
    assert value_at(points, T + timedelta(seconds=15)) == 9_000.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "grant"}, "type: expected 'demand'"),
        ({"issued_at": "2026-01-01T08:00:00"}, "issued_at: timestamp without time zone"),
        ({"points": []}, "points: expected a non-empty list"),
        (
            {"points": [{"start": "2026-01-01T08:00:00Z", "needed_w": "5", "wished_w": 1}]},
            "points[0].needed_w",
        ),
        (
            {"points": [{"start": "2026-01-01T08:00:00Z", "needed_w": 9, "wished_w": 1}]},
            "needed_w ≤ wished_w",
        ),
    ],
)
def test_malformed_demands_name_the_field(change: dict[str, object], message: str) -> None:
    data = demand_to_json(PowerDemand("site", VALID, (DemandPoint(T, 0.0, 1.0),)))
    data.update(change)
    with pytest.raises(ExchangeError) as err:
        demand_from_json(data)
    assert message in str(err.value)


def test_negative_grants_are_refused() -> None:
    data = grant_to_json(PowerGrant("site", VALID, (GrantPoint(T, 1.0),), ""))
    data["points"] = [{"start": "2026-01-01T08:00:00Z", "granted_w": -5}]
    with pytest.raises(ExchangeError, match="granted_w"):
        grant_from_json(data)


async def test_in_memory_exchange_keeps_the_latest_per_site() -> None:
    bus = InMemoryExchange()
    await bus.publish_grant(PowerGrant("a", VALID, (GrantPoint(T, 1.0),), "first"))
    await bus.publish_grant(PowerGrant("a", VALID, (GrantPoint(T, 2.0),), "second"))
    latest = bus.latest_grant("a")
    assert latest is not None
    assert latest.reason == "second"
    assert bus.latest_grant("b") is None
    assert bus.latest_demand("a") is None

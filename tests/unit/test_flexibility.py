"""The CSM's demand profile (csm/flexibility.py): ΔE_min as late as possible, the rest as soon as possible."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

import aiomqtt
import pytest

from chargeflow.csm.demand import EvSession, Preferences, demand_table
from chargeflow.csm.flexibility import demand_profile
from chargeflow.exchange import DemandPoint, PowerDemand, Validity, demand_from_json, demand_to_json
from chargeflow.protocols.mqtt.exchange import MqttExchange, MqttSettings
from chargeflow.site.model import ChargingPoint

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)  # on a quarter hour
STEP_S = 10.0
VOLTAGE_V = 250.0  # one phase at 40 A is 10 kW, at 20 A 5 kW: round figures to check by hand


def ev(point_id: str, max_a: float, needed_kwh: float, wished_kwh: float, departs_h: float) -> EvSession:
    point = ChargingPoint(point_id, "main", phases=1, max_current_a=max_a)
    prefs = Preferences(round(needed_kwh * 1000), round(wished_kwh * 1000), T0 + timedelta(hours=departs_h))
    return EvSession.at(point, prefs)


def profile(sessions: list[EvSession], now: datetime = T0) -> tuple[DemandPoint, ...]:
    table = demand_table(sessions, now, STEP_S, VOLTAGE_V)
    return demand_profile(sessions, table, now, STEP_S)


def at(points: tuple[DemandPoint, ...], t: datetime) -> tuple[float, float]:
    """P_needed and P_wished of the point in force at ``t``."""
    p = max((p for p in points if p.start <= t), key=lambda p: p.start)
    return round(p.needed_w, 3), round(p.wished_w, 3)


def energy_kwh(points: tuple[DemandPoint, ...]) -> tuple[float, float]:
    need = wish = 0.0
    for p, q in itertools.pairwise(points):
        hours = (q.start - p.start).total_seconds() / 3600
        need, wish = need + p.needed_w * hours, wish + p.wished_w * hours
    return round(need / 1000, 3), round(wish / 1000, 3)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_one_ev_needs_as_late_and_wishes_the_rest_as_soon_as_possible() -> None:
    # 10 kW, ΔE_min 10 kWh, ΔE_max 20 kWh, leaves at 12:00: ΔE_min 11:00–12:00, the rest 08:00–09:00.
    points = profile([ev("a", 40, 10, 20, 4)])
    table = demand_table([ev("a", 40, 10, 20, 4)], T0, STEP_S, VOLTAGE_V)
    assert points[0] == DemandPoint(T0, table.needed_w, table.wished_w)  # the point for now, as before
    assert at(points, T0) == (0.0, 10_000.0)
    assert points[1].start == T0 + timedelta(seconds=STEP_S)  # the first point holds for one step
    assert points[2].start == h(0.25)  # then the quarter hours
    assert at(points, h(0.5)) == (0.0, 10_000.0)
    assert at(points, h(1)) == (0.0, 0.0)
    assert at(points, h(10.75)) == (0.0, 0.0)
    assert at(points, h(3)) == (10_000.0, 10_000.0)
    assert at(points, h(3.75)) == (10_000.0, 10_000.0)
    assert at(points, h(4)) == (0.0, 0.0)
    assert points[-1] == DemandPoint(h(24), 0.0, 0.0)  # the profile's end
    assert len(points) == 2 + 95 + 1  # now, one step later, the quarter hours to 07:45 tomorrow, the end
    assert energy_kwh(points) == (10.0, 20.0)


def test_an_ev_off_the_quarter_hour_is_averaged_over_each_interval() -> None:
    now = T0 + timedelta(minutes=5)
    points = profile([ev("a", 40, 10, 20, 4)], now)  # the rest as soon as possible: 08:05–09:05
    assert points[2].start == h(0.25)
    assert at(points, h(1)) == (0.0, round(10_000 / 3, 3))  # 5 of the 15 minutes from 09:00
    assert at(points, h(3)) == (10_000.0, 10_000.0)
    assert energy_kwh(points) == (10.0, 20.0)


def test_an_ev_that_is_already_late_needs_its_full_power_until_it_leaves() -> None:
    points = profile([ev("a", 40, 10, 10, 0.5)])  # 10 kWh in 30 minutes at 10 kW: 5 kWh is all it can get
    assert at(points, T0) == (10_000.0, 10_000.0)
    assert at(points, h(0.25)) == (10_000.0, 10_000.0)
    assert at(points, h(0.5)) == (0.0, 0.0)
    assert energy_kwh(points) == (5.0, 5.0)


def test_two_evs_add_up() -> None:
    # a: 10 kW, ΔE_min = ΔE_max = 10 kWh, leaves at 12:00;  b: 5 kW, 5 kWh needed of 10, leaves at 10:00
    points = profile([ev("a", 40, 10, 10, 4), ev("b", 20, 5, 10, 2)])
    assert at(points, T0) == (0.0, 15_000.0)  # now both could take their full power
    assert at(points, h(0.25)) == (0.0, 5_000.0)  # b's energy beyond ΔE_min as soon as possible
    assert at(points, h(1)) == (5_000.0, 5_000.0)  # b's ΔE_min as late as possible
    assert at(points, h(2)) == (0.0, 0.0)
    assert at(points, h(3)) == (10_000.0, 10_000.0)  # a's
    # The profile after the first step holds 15 and 20 kWh less the first step's 5 kW of wish; the first
    # point is the step's own (a may take its 10 kW now).
    assert energy_kwh(points[1:]) == (15.0, round(20 - 5 * STEP_S / 3600, 3))


def test_no_ev_is_a_profile_of_zeros() -> None:
    points = profile([])
    assert all(p.needed_w == 0 and p.wished_w == 0 for p in points)


def test_the_profile_survives_the_wire() -> None:
    points = profile([ev("a", 40, 10, 10, 4), ev("b", 20, 5, 10, 2)], T0 + timedelta(minutes=7))
    demand = PowerDemand("site", Validity(T0, T0 + timedelta(seconds=30)), points)
    assert demand_from_json(json.loads(json.dumps(demand_to_json(demand)))) == demand


@dataclass
class _Message:
    topic: str
    payload: bytes


@dataclass
class _FakeClient:
    """What ``MqttExchange`` uses of ``aiomqtt.Client``: publish, and the messages that come back."""

    published: list[_Message] = field(default_factory=list)

    async def publish(self, topic: str, payload: str, qos: int, retain: bool) -> None:
        self.published.append(_Message(topic, payload.encode()))


async def test_the_mqtt_exchange_carries_every_point_of_the_profile() -> None:
    points = profile([ev("a", 40, 10, 20, 4), ev("b", 20, 5, 10, 2)])
    demand = PowerDemand("site", Validity(T0, T0 + timedelta(seconds=30)), points)
    client = _FakeClient()
    sender = MqttExchange(cast(aiomqtt.Client, client), MqttSettings())
    await sender.publish_demand(demand)
    (message,) = client.published
    assert message.topic == "chargeflow/site/demand"

    class _Replay:
        def __aiter__(self) -> _Replay:
            self.left = [message]
            return self

        async def __anext__(self) -> _Message:
            if not self.left:
                raise StopAsyncIteration
            return self.left.pop()

    receiver_client = type("Client", (), {"messages": _Replay()})()
    receiver = MqttExchange(cast(aiomqtt.Client, receiver_client), MqttSettings())
    await receiver._listen()
    assert receiver.rejected == 0
    assert receiver.latest_demand("site") == demand
    assert len(points) > 90


@pytest.mark.parametrize("minutes", [0, 1, 14, 29])
def test_need_never_exceeds_wish_and_the_energy_adds_up(minutes: int) -> None:
    sessions = [ev("a", 40, 12, 30, 7.3), ev("b", 20, 0, 8, 3), ev("c", 32, 20, 20, 2.2)]
    points = profile(sessions, T0 + timedelta(minutes=minutes))
    assert all(0 <= p.needed_w <= p.wished_w for p in points)
    # c cannot get all of its 20 kWh in its stay (2.2 h from 08:00) at 8 kW: the profile counts what fits.
    # The first point (the step's own, with whole currents) may differ from the profile by a few Wh.
    c_kwh = 8 * (2.2 - minutes / 60)
    need, wish = energy_kwh(points)
    assert need == pytest.approx(12 + c_kwh, abs=0.1)
    assert wish == pytest.approx(30 + 8 + c_kwh, abs=0.1)

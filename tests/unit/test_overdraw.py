"""#13 items 1–3: what EVs draw beyond their limits counts against the fuses and the grant; a session's
limit holds at the station only for a bounded time, renewed while the CSM runs; the last limit is kept
per session, not per connector."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chargeflow.csm import transactions
from chargeflow.csm.model import MeterSample, StopRequest
from chargeflow.csm.overdraw import Excess, add_excess, excess_of, held_to
from chargeflow.csm.smart_charging import TX_DEFAULT, TX_PROFILE
from chargeflow.csm.split import Strategy
from chargeflow.site.config import parse_site
from chargeflow.site.measurement import SiteMeasurement
from chargeflow.site.model import ChargingPoint
from chargeflow.site.tree import check_site, constraint_index
from tests.unit.test_site_stations import T0, Rig

V = 230.0
SITE = {
    "grid": {"max_import_w": 22_080, "max_export_w": 0},  # 32 A on three phases
    "circuits": [
        {"id": "main", "parent": None, "max_current_a": 63},
        {"id": "garage", "parent": "main", "max_current_a": 40},
    ],
    "charging_points": [
        {"id": "a", "circuit": "garage", "max_current_a": 32},
        {"id": "b", "circuit": "garage", "max_current_a": 32},
        {"id": "c", "circuit": "main", "phases": 1, "l1_phase": 2, "max_current_a": 32},
    ],
}


def test_an_excess_is_counted_on_the_grid_phases_its_station_is_wired_to() -> None:
    point = ChargingPoint("p", "garage", 3, 2)  # its L1 on grid L2
    found = excess_of(point, "main", [20.0, 12.0, 10.0], 10.0, V)
    assert found == Excess("garage", (0.0, 10.0, 2.0), 12.0 * V)
    assert excess_of(point, "main", [10.1, 10.0, 9.0], 10.0, V, tolerance_a=0.2) is None
    nowhere = excess_of(
        None, "main", [0.0, 7.0, 3.0], 0.0, V
    )  # no place on the site: on the root, all phases
    assert nowhere == Excess("main", (7.0, 7.0, 7.0), 21.0 * V)


def test_an_excess_loads_its_circuit_and_every_one_above_it() -> None:
    site = parse_site(SITE)
    tree = check_site(site)
    loads = [0.0] * (3 * len(tree.circuits))
    total = add_excess(tree, loads, [Excess("garage", (1.0, 2.0, 3.0), 6.0 * V)])
    assert total == 6.0 * V
    for name in ("garage", "main"):
        k = tree.index[name]
        assert [loads[constraint_index(k, p)] for p in (1, 2, 3)] == [1.0, 2.0, 3.0]


def test_a_reading_is_held_to_the_highest_limit_in_force_in_the_time_an_ev_has_to_follow_it() -> None:
    s = timedelta(seconds=1)
    history = [(T0, 16.0), (T0 + 20 * s, 10.0), (T0 + 40 * s, 12.0)]
    assert held_to(history, T0 - s, 10.0) is None  # before the first limit: the station's default
    assert held_to(history, T0 + 5 * s, 10.0) == 16.0
    assert held_to(history, T0 + 25 * s, 10.0) == 16.0  # lowered 5 s ago: still the one before
    assert held_to(history, T0 + 31 * s, 10.0) == 10.0
    assert held_to(history, T0 + 41 * s, 10.0) == 12.0  # raised: at once


async def draw(rig: Rig, station: str, amps: float, phases: int = 3) -> None:
    samples = [
        MeterSample(rig.clock.now(), str(amps), "Current.Import", f"L{p}") for p in range(1, phases + 1)
    ]
    rig.csm.live.observe(station, 1, samples)


async def test_stations_that_ignore_their_limits_are_taken_out_of_the_grant_and_the_fuses() -> None:
    rig = Rig(parse_site(SITE), Strategy.EQUAL)
    rig.control.connected = {"a", "b"}
    await rig.start("a", 1)
    await rig.start("b", 1)
    first = await rig.step()
    # 32 A of grid for two EVs (the controller's margin is 0 here): 16 A each
    assert first[("a", 1)][0] == pytest.approx(16.0)
    assert first[("b", 1)][0] == pytest.approx(16.0)
    limits = first
    for _ in range(4):  # b's EV follows its limit; a's draws 24 A whatever it is sent
        await draw(rig, "b", limits[("b", 1)][0])
        await draw(rig, "a", 24.0)
        limits = await rig.step()
        assert rig.csm.last is not None
        # the grid's 32 A hold what a draws and what b may
        assert 24.0 + limits[("b", 1)][0] <= 32.0 + 1e-6
        assert rig.csm.last.excess_w > 0
    # after the 30 s grace a is suspended: 0 A, and its whole draw counts until it stops
    assert limits[("a", 1)] == (0.0, "suspended_overdraw")
    assert limits[("b", 1)][0] == pytest.approx(8.0)  # 32 A less a's 24 A
    await draw(rig, "b", 8.0)
    await draw(rig, "a", 0.0)  # it stops: b gets the grid back
    limits = await rig.step()
    assert limits[("b", 1)][0] == pytest.approx(32.0)


async def test_a_lowered_limit_is_not_an_excess_while_the_ev_follows_it() -> None:
    rig = Rig(parse_site(SITE), Strategy.EQUAL)
    rig.control.connected = {"a", "b"}
    await rig.start("a", 1)
    await rig.step()  # a alone: 32 A
    await draw(rig, "a", 32.0)
    await rig.start("b", 1)
    limits = await rig.step()  # b arrives: a is lowered to 16 A and still draws 32 A for a moment
    assert limits[("a", 1)][0] == pytest.approx(16.0)
    assert rig.csm.last is not None
    assert rig.csm.last.excess_w == 0.0


async def test_a_sessions_limit_is_bounded_and_renewed_while_the_csm_runs() -> None:
    rig = Rig(parse_site(SITE))
    rig.control.connected = {"a"}
    await rig.start("a", 1)
    await rig.step()
    sent = [(s, t) for s, t in zip(rig.control.sent, rig.control.terms, strict=True) if s[3] == TX_PROFILE]
    assert len(sent) == 1
    (_, (stack, valid_to)) = sent[0]
    # six steps of 10 s: a station that loses the CSM falls back to its safe TxDefault within a minute
    assert stack == 0
    assert valid_to == T0 + timedelta(seconds=60)
    for _ in range(2):
        await rig.step()  # unchanged and more than half its validity left: nothing sent
    assert sum(s[3] == TX_PROFILE for s in rig.control.sent) == 1
    await rig.step()  # 30 s after it was sent: half its validity is gone, it is renewed
    renewed = [t for s, t in zip(rig.control.sent, rig.control.terms, strict=True) if s[3] == TX_PROFILE]
    assert renewed[-1] == (0, T0 + timedelta(seconds=90))


async def test_a_station_without_tx_profiles_gets_a_bounded_default_above_its_safe_one() -> None:
    rig = Rig(parse_site(SITE))
    rig.control.connected = {"a"}
    rig.control.refuse_tx_profiles = {"a"}
    await rig.csm.send_safe_defaults()
    await rig.start("a", 1)
    await rig.step()
    defaults = [
        (s[2], t) for s, t in zip(rig.control.sent, rig.control.terms, strict=True) if s[3] == TX_DEFAULT
    ]
    safe, session = defaults
    assert safe == (rig.csm.safe_a["a"], (0, None))  # the safe one: stack level 0, for ever
    assert session == (32.0, (1, T0 + timedelta(seconds=60)))  # the session's: above it, bounded


async def test_a_new_session_gets_its_limit_even_where_it_equals_the_last_sessions() -> None:
    rig = Rig(parse_site(SITE))
    rig.control.connected = {"a"}
    first = await rig.start("a", 1)
    await rig.step()
    await stop(rig, first)
    await rig.step()
    await rig.start("a", 1)
    await rig.step()  # the same 32 A as the last session's: sent all the same, for the new session
    assert sum(s[3] == TX_PROFILE for s in rig.control.sent) == 2


async def stop(rig: Rig, transaction_id: int) -> None:
    tx = await rig.repo.get_transaction(transaction_id)
    assert tx is not None
    request = StopRequest(tx.station_id, transaction_id, 100, rig.clock.now(), "Local")
    await rig.repo.stop_transaction(request, lambda t: transactions.apply_stop(t, request))


class BrokenMeter:
    """A meter adapter that fails in a way no one planned for."""

    async def read(self) -> SiteMeasurement:
        raise KeyError("ENERGY")


async def test_any_failure_of_a_meter_brings_the_safe_limit_and_never_ends_the_step() -> None:
    # #13 item 4: not only timeouts and OS errors; a meter raising anything else ended the control loop
    rig = Rig(parse_site(SITE))
    rig.control.connected = {"a"}
    await rig.start("a", 1)
    assert (await rig.step())[("a", 1)][0] == 32.0
    broken = BrokenMeter()
    rig.csm._meter = broken
    rig.ems._meter = broken
    limits = await rig.step()  # the EMS grants nothing and the CSM has no reading: the safe limit
    assert limits[("a", 1)] == (rig.csm.safe_a["a"], "fallback_measurements_stale")


async def test_a_failed_step_takes_an_overdrawing_session_to_its_safe_limit_too() -> None:
    rig = Rig(parse_site(SITE), Strategy.EQUAL)
    rig.control.connected = {"a", "b"}
    await rig.start("a", 1)
    await rig.start("b", 1)
    limits = await rig.step()
    await draw(rig, "b", limits[("b", 1)][0])
    await draw(rig, "a", 24.0)  # a draws past its 16 A: held out of the split at its last limit
    assert (await rig.step())[("a", 1)] == (16.0, "overdrawing")
    step = await rig.csm.fall_back("fallback_store_unavailable")
    assert {(lim.station_id, lim.current_a) for lim in step.limits} == {
        ("a", rig.csm.safe_a["a"]),
        ("b", rig.csm.safe_a["b"]),
    }

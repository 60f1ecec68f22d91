"""The station-side composite schedule, worked by hand (OCPP 1.6 §3.13 and 2.0.1 block K)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargeflow.sim.profiles import (
    ChargingProfiles,
    CompositePeriod,
    Kind,
    Period,
    Profile,
    Purpose,
    Reason,
    RunningTx,
    Schedule,
    Version,
    period_at,
    profile_of,
)

T0 = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
V = 230.0


def profile(
    pid: int,
    purpose: Purpose,
    periods: list[tuple[int, float]],
    *,
    stack: int = 0,
    connector: int = 1,
    kind: Kind = Kind.RELATIVE,
    start: datetime | None = None,
    duration_s: int | None = None,
    unit: str = "A",
    tx: str | None = None,
    phases: int | None = None,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    recurrency: str | None = None,
) -> Profile:
    return Profile(
        id=pid,
        stack_level=stack,
        purpose=purpose,
        kind=kind,
        schedule=Schedule(unit, tuple(Period(s, lim, phases) for s, lim in periods), start, duration_s),
        connector_id=connector,
        transaction_id=tx,
        recurrency=recurrency,
        valid_from=valid_from,
        valid_to=valid_to,
    )


def installed(version: Version, *profiles: Profile, tx: RunningTx | None = None) -> ChargingProfiles:
    store = ChargingProfiles(version)
    for p in profiles:
        verdict = store.install(p, tx)
        assert verdict.accepted, verdict.reason
    return store


TX = RunningTx("7", T0)


def amps(store: ChargingProfiles, t: datetime, tx: RunningTx | None = TX, phases: int = 3) -> float:
    return store.limit(t, 1, tx, phases, V, hardware_max_a=32.0).current_a


def test_stacking_higher_level_rules_while_its_schedule_runs_then_the_lower_one_again() -> None:
    """Two absolute TxDefault profiles (the shape of 1.6 test case TC_072): level 1 for 150 s over level 0."""
    low = profile(
        1, Purpose.TX_DEFAULT, [(0, 6), (100, 8), (200, 10)], kind=Kind.ABSOLUTE, start=T0, duration_s=400
    )
    high = profile(
        2, Purpose.TX_DEFAULT, [(0, 10), (100, 6)], stack=1, kind=Kind.ABSOLUTE, start=T0, duration_s=150
    )
    store = installed(Version.V16, low, high)
    composite = store.composite(T0, 400, 1, None, "A", 3, V, hardware_max_a=32.0)
    assert composite.periods == (
        CompositePeriod(0, 10.0, 3),
        CompositePeriod(100, 6.0, 3),
        CompositePeriod(150, 8.0, 3),
        CompositePeriod(200, 10.0, 3),
    )
    # After both schedules end only the hardware limits the connector.
    assert amps(store, T0 + timedelta(seconds=400)) == 32.0


def test_tx_profile_overrides_tx_default_and_the_station_maximum_caps_both() -> None:
    default = profile(1, Purpose.TX_DEFAULT, [(0, 10)], connector=0)
    tx_profile = profile(2, Purpose.TX, [(0, 20)], tx="7")
    store = installed(Version.V16, default, tx_profile, tx=TX)
    # The TxProfile replaces the default even where it is higher: it is not a minimum of the two.
    limit = store.limit(T0, 1, TX, 3, V, 32.0)
    assert (limit.current_a, limit.reason, limit.profile_id) == (20.0, Reason.TX, 2)
    # Without the transaction the default applies.
    assert amps(store, T0, tx=None) == 10.0
    assert (
        installed(Version.V16, profile(3, Purpose.STATION_MAX, [(0, 16)], connector=0))
        .install(tx_profile, TX)
        .accepted
    )
    store.install(profile(3, Purpose.STATION_MAX, [(0, 16)], connector=0), TX)
    limit = store.limit(T0, 1, TX, 3, V, 32.0)
    assert (limit.current_a, limit.reason, limit.profile_id) == (16.0, Reason.STATION_MAX, 3)


def test_the_station_hardware_caps_a_profile_above_it() -> None:
    store = installed(Version.V16, profile(1, Purpose.TX_DEFAULT, [(0, 63)]))
    limit = store.limit(T0, 1, TX, 3, V, hardware_max_a=32.0)
    assert (limit.current_a, limit.reason) == (32.0, Reason.HARDWARE)


def test_watts_become_amps_per_phase_over_the_phases_in_use() -> None:
    store = installed(Version.V16, profile(1, Purpose.TX_DEFAULT, [(0, 11_040)], unit="W"))
    assert amps(store, T0, phases=3) == pytest.approx(16.0)  # 11 040 W / (3 × 230 V)
    assert amps(store, T0, phases=1) == 32.0  # 48 A on one phase, but the hardware stops at 32 A
    one_phase = installed(Version.V16, profile(1, Purpose.TX_DEFAULT, [(0, 3680)], unit="W", phases=1))
    limit = one_phase.limit(T0, 1, TX, 3, V, 32.0)
    assert limit.current_a == pytest.approx(16.0)
    assert limit.phases == 1


def test_composite_schedule_in_watts() -> None:
    store = installed(Version.V201, profile(1, Purpose.TX_DEFAULT, [(0, 10), (600, 16)]))
    composite = store.composite(T0, 3600, 1, None, "W", 3, V, 32.0)
    assert [(p.start_s, p.limit) for p in composite.periods] == [(0, 6900.0), (600, 11040.0)]


def test_relative_schedules_start_with_the_transaction() -> None:
    store = installed(Version.V16, profile(1, Purpose.TX_DEFAULT, [(0, 10), (3600, 16)]))
    assert amps(store, T0 + timedelta(minutes=30)) == 10.0
    assert amps(store, T0 + timedelta(hours=2)) == 16.0
    # Without a transaction the composite runs from the moment it is asked for.
    composite = store.composite(T0 + timedelta(hours=5), 7200, 1, None, "A", 3, V, 32.0)
    assert [(p.start_s, p.limit) for p in composite.periods] == [(0, 10.0), (3600, 16.0)]


def test_daily_recurring_profile_repeats_from_its_start() -> None:
    night = profile(
        1,
        Purpose.TX_DEFAULT,
        [(0, 32), (22 * 3600, 8)],
        kind=Kind.RECURRING,
        recurrency="Daily",
        start=datetime(2026, 1, 1, tzinfo=UTC),
    )
    store = installed(Version.V16, night)
    assert amps(store, datetime(2026, 3, 5, 23, 0, tzinfo=UTC)) == 8.0
    assert amps(store, datetime(2026, 3, 6, 7, 0, tzinfo=UTC)) == 32.0
    composite = store.composite(datetime(2026, 3, 5, 21, 0, tzinfo=UTC), 4 * 3600, 1, None, "A", 3, V, 32.0)
    assert [(p.start_s, p.limit) for p in composite.periods] == [(0, 32.0), (3600, 8.0), (3 * 3600, 32.0)]


def test_weekly_recurrence_and_nothing_before_the_first_occurrence() -> None:
    weekly = profile(
        1,
        Purpose.TX_DEFAULT,
        [(0, 6), (86_400, 20)],
        kind=Kind.RECURRING,
        recurrency="Weekly",
        start=datetime(2026, 3, 2, tzinfo=UTC),  # a Monday: 6 A on Mondays, 20 A the rest of the week
    )
    store = installed(Version.V16, weekly)
    assert amps(store, datetime(2026, 3, 9, 12, tzinfo=UTC)) == 6.0
    assert amps(store, datetime(2026, 3, 12, 12, tzinfo=UTC)) == 20.0
    assert amps(store, datetime(2026, 3, 1, 12, tzinfo=UTC)) == 32.0


def test_valid_from_and_valid_to_bound_a_profile() -> None:
    later = profile(
        1, Purpose.TX_DEFAULT, [(0, 8)], valid_from=T0 + timedelta(hours=1), valid_to=T0 + timedelta(hours=2)
    )
    store = installed(Version.V16, later)
    assert [amps(store, T0 + timedelta(minutes=m)) for m in (30, 60, 90, 120)] == [32.0, 8.0, 8.0, 32.0]
    composite = store.composite(T0, 3 * 3600, 1, TX, "A", 3, V, 32.0)
    assert [(p.start_s, p.limit) for p in composite.periods] == [(0, 32.0), (3600, 8.0), (7200, 32.0)]


def test_connector_default_beats_the_all_connector_default_of_the_same_level_only() -> None:
    everyone = profile(1, Purpose.TX_DEFAULT, [(0, 10)], connector=0)
    this_one = profile(2, Purpose.TX_DEFAULT, [(0, 14)], connector=1)
    assert amps(installed(Version.V16, everyone, this_one), T0) == 14.0
    higher_everyone = profile(3, Purpose.TX_DEFAULT, [(0, 12)], connector=0, stack=2)
    assert amps(installed(Version.V16, everyone, this_one, higher_everyone), T0) == 12.0


def test_v16_replaces_same_id_or_same_stack_level_and_purpose() -> None:
    store = installed(Version.V16, profile(1, Purpose.TX_DEFAULT, [(0, 10)]))
    assert store.install(profile(2, Purpose.TX_DEFAULT, [(0, 12)]), None).accepted
    assert [p.id for p in store.profiles] == [2]
    assert store.install(profile(2, Purpose.TX_DEFAULT, [(0, 9)], stack=3), None).accepted
    assert [(p.id, p.stack_level) for p in store.profiles] == [(2, 3)]


def test_v16_refusals() -> None:
    store = ChargingProfiles(Version.V16)
    assert store.install(profile(1, Purpose.TX, [(0, 10)]), None).reason == "NoTransaction"
    assert store.install(profile(1, Purpose.TX, [(0, 10)], tx="8"), TX).reason == "TxNotFound"
    assert (
        store.install(profile(1, Purpose.STATION_MAX, [(0, 10)], connector=1), None).reason == "InvalidEvse"
    )
    assert store.install(profile(1, Purpose.TX_DEFAULT, [(5, 10)]), None).reason == "InvalidSchedule"
    assert store.install(profile(1, Purpose.TX_DEFAULT, [(0, 10)], connector=2), None).reason == "UnknownEvse"
    assert store.profiles == []
    # A 1.6 TxProfile without a transactionId belongs to the transaction running on its connector.
    assert store.install(profile(1, Purpose.TX, [(0, 10)]), TX).accepted
    assert store.profiles[0].transaction_id == "7"


def test_v201_refusals_and_replacement_by_id() -> None:
    store = ChargingProfiles(Version.V201)
    max_relative = profile(1, Purpose.STATION_MAX, [(0, 10)], connector=0)
    assert store.install(max_relative, None).reason == "InvalidProfileKind"  # K01.FR.38
    assert store.install(profile(1, Purpose.TX, [(0, 10)]), TX).reason == "MissingTransactionId"  # K01.FR.03
    until = T0 + timedelta(days=1)
    assert store.install(profile(1, Purpose.TX_DEFAULT, [(0, 10)], valid_to=until), None).accepted
    # K01.FR.06: another profile with the same stack level, purpose and EVSE is refused ...
    assert store.install(profile(2, Purpose.TX_DEFAULT, [(0, 12)]), None).reason == "DuplicateProfile"
    # ... unless their validity does not overlap; the same id replaces (K01.FR.05).
    assert store.install(
        profile(2, Purpose.TX_DEFAULT, [(0, 12)], valid_from=T0 + timedelta(days=9)), None
    ).accepted
    assert store.install(profile(1, Purpose.TX_DEFAULT, [(0, 6)], valid_to=until), None).accepted
    assert sorted((p.id, p.schedule.periods[0].limit) for p in store.profiles) == [(1, 6.0), (2, 12.0)]
    # K01.FR.39: a second TxProfile of the same stack level for the transaction is refused.
    assert store.install(profile(3, Purpose.TX, [(0, 10)], tx="7"), TX).accepted
    assert store.install(profile(4, Purpose.TX, [(0, 11)], tx="7"), TX).reason == "DuplicateProfile"
    assert store.install(profile(4, Purpose.TX, [(0, 11)], tx="7", stack=1), TX).accepted
    assert amps(store, T0) == 11.0


def test_clear_by_id_purpose_stack_level_and_connector() -> None:
    def fresh() -> ChargingProfiles:
        return installed(
            Version.V16,
            profile(1, Purpose.TX_DEFAULT, [(0, 10)], connector=0),
            profile(2, Purpose.TX_DEFAULT, [(0, 12)], connector=1, stack=1),
            profile(3, Purpose.STATION_MAX, [(0, 16)], connector=0),
            profile(4, Purpose.TX, [(0, 8)], tx="7"),
            tx=TX,
        )

    def ids(store: ChargingProfiles) -> list[int]:
        return sorted(p.id for p in store.profiles)

    store = fresh()
    assert store.clear(profile_id=2)
    assert ids(store) == [1, 3, 4]
    assert not store.clear(profile_id=2)  # Unknown
    store = fresh()
    assert store.clear(purpose=Purpose.TX_DEFAULT)
    assert ids(store) == [3, 4]
    store = fresh()
    assert store.clear(connector_id=0)
    assert ids(store) == [2, 4]
    store = fresh()
    assert store.clear(purpose=Purpose.TX_DEFAULT, stack_level=1)
    assert ids(store) == [1, 3, 4]
    assert not store.clear(purpose=Purpose.TX_DEFAULT, stack_level=5)
    store = fresh()
    assert store.clear()
    assert ids(store) == []


def test_a_tx_profile_ends_with_its_transaction() -> None:
    store = installed(
        Version.V16,
        profile(1, Purpose.TX_DEFAULT, [(0, 10)]),
        profile(2, Purpose.TX, [(0, 20)]),
        tx=TX,
    )
    assert amps(store, T0) == 20.0
    store.end_transaction("7")
    assert [p.id for p in store.profiles] == [1]
    assert amps(store, T0, tx=RunningTx("8", T0)) == 10.0


def test_profiles_are_read_from_the_librarys_snake_case_payloads() -> None:
    p16 = profile_of(
        Version.V16,
        1,
        {
            "charging_profile_id": 5,
            "transaction_id": 42,
            "stack_level": 2,
            "charging_profile_purpose": "ChargePointMaxProfile",
            "charging_profile_kind": "Absolute",
            "valid_to": "2026-03-06T00:00:00Z",
            "charging_schedule": {
                "duration": 600,
                "start_schedule": "2026-03-05T08:00:00Z",
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": 7000.0, "number_phases": 1}],
            },
        },
    )
    assert p16 == profile(
        5,
        Purpose.STATION_MAX,
        [(0, 7000.0)],
        stack=2,
        kind=Kind.ABSOLUTE,
        start=T0,
        duration_s=600,
        unit="W",
        tx="42",
        phases=1,
        valid_to=datetime(2026, 3, 6, tzinfo=UTC),
    )
    assert Purpose.STATION_MAX.wire(Version.V16) == "ChargePointMaxProfile"
    p201 = profile_of(
        Version.V201,
        1,
        {
            "id": 9,
            "stack_level": 0,
            "charging_profile_purpose": "TxProfile",
            "charging_profile_kind": "Relative",
            "transaction_id": "TX-1",
            "charging_schedule": [
                {
                    "id": 1,
                    "charging_rate_unit": "A",
                    "charging_schedule_period": [{"start_period": 0, "limit": 13}],
                }
            ],
        },
    )
    assert (p201.id, p201.purpose, p201.transaction_id, p201.schedule.periods) == (
        9,
        Purpose.TX,
        "TX-1",
        (Period(0, 13.0),),
    )


def test_period_at_outside_the_schedule_is_none() -> None:
    p = profile(1, Purpose.TX_DEFAULT, [(0, 10)], kind=Kind.ABSOLUTE, start=T0, duration_s=60)
    assert period_at(p, T0 - timedelta(seconds=1)) is None
    assert period_at(p, T0 + timedelta(seconds=59)) == Period(0, 10)
    assert period_at(p, T0 + timedelta(seconds=60)) is None


@given(
    st.lists(st.tuples(st.integers(0, 3), st.floats(0, 80), st.sampled_from(list(Purpose)[:3])), max_size=6),
    st.floats(6, 63),
    st.integers(0, 86_400),
)
def test_the_limit_never_exceeds_the_station_maximum_or_the_hardware(
    specs: list[tuple[int, float, Purpose]], hardware_a: float, offset_s: int
) -> None:
    store = ChargingProfiles(Version.V16)
    for n, (stack, limit, purpose) in enumerate(specs):
        connector = 0 if purpose is Purpose.STATION_MAX else 1
        store.install(profile(n, purpose, [(0, limit)], stack=stack, connector=connector), TX)
    t = T0 + timedelta(seconds=offset_s)
    result = store.limit(t, 1, TX, 3, V, hardware_a)
    assert result.current_a <= hardware_a
    caps = [p for p in store.profiles if p.purpose is Purpose.STATION_MAX]
    if caps:
        top = max(caps, key=lambda p: p.stack_level)
        assert result.current_a <= top.schedule.periods[0].limit


_kinds = st.sampled_from([Kind.ABSOLUTE, Kind.RELATIVE, Kind.RECURRING])


@st.composite
def random_profile(draw: st.DrawFn, pid: int) -> Profile:
    purpose = draw(st.sampled_from([Purpose.TX_DEFAULT, Purpose.STATION_MAX, Purpose.TX]))
    starts = sorted(draw(st.sets(st.integers(1, 20_000), max_size=3)))
    periods = [(s, float(draw(st.integers(0, 40)))) for s in [0, *starts]]
    kind = draw(_kinds)
    if purpose is Purpose.STATION_MAX and kind is Kind.RELATIVE:
        kind = Kind.ABSOLUTE
    offset = timedelta(seconds=draw(st.integers(-40_000, 40_000)))
    window = draw(st.one_of(st.none(), st.tuples(st.integers(-20_000, 20_000), st.integers(1, 60_000))))
    return profile(
        pid,
        purpose,
        periods,
        stack=draw(st.integers(0, 2)),
        connector=0 if purpose is Purpose.STATION_MAX else draw(st.sampled_from([0, 1])),
        kind=kind,
        start=T0 + offset if kind is not Kind.RELATIVE else None,
        duration_s=draw(st.one_of(st.none(), st.integers(60, 50_000))),
        unit=draw(st.sampled_from(["A", "W"])),
        tx="7" if purpose is Purpose.TX else None,
        recurrency="Daily" if kind is Kind.RECURRING else None,
        valid_from=T0 + timedelta(seconds=window[0]) if window else None,
        valid_to=T0 + timedelta(seconds=window[0] + window[1]) if window else None,
    )


@given(
    st.lists(st.integers(0, 10), min_size=1, max_size=5).flatmap(
        lambda ids: st.tuples(*[random_profile(n) for n in range(len(ids))])
    ),
    st.booleans(),
    st.lists(st.integers(0, 86_399), min_size=1, max_size=10),
)
def test_the_composite_schedule_is_the_limit_at_every_moment(
    profiles: tuple[Profile, ...], with_tx: bool, probes_s: list[int]
) -> None:
    """Between the composite's period starts the limit does not change, and each period holds it."""
    store = ChargingProfiles(Version.V16)
    tx = RunningTx("7", T0 - timedelta(minutes=30)) if with_tx else None
    for p in profiles:
        store.install(p, tx)
    composite = store.composite(T0, 86_400, 1, tx, "A", 3, V, 32.0)
    assert composite.periods[0].start_s == 0
    for probe in probes_s:
        period = [p for p in composite.periods if p.start_s <= probe][-1]
        limit = store.limit(T0 + timedelta(seconds=probe), 1, tx, 3, V, 32.0, relative_to=T0)
        assert period.limit == pytest.approx(math.floor(limit.current_a * 10 + 1e-6) / 10)

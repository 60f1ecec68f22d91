"""The pure CSM rules: authorisation, transaction folding and energy."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargeflow.csm import auth, transactions
from chargeflow.csm.model import (
    AuthStatus,
    IdTokenRecord,
    MeterSample,
    StartRequest,
    StopRequest,
    TransactionEvent,
    TxEventType,
)
from chargeflow.csm.passwords import hash_password, verify_password

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_unknown_token_is_invalid_unless_free_vend() -> None:
    assert auth.decide(None, NOW).status is AuthStatus.INVALID
    assert auth.decide(None, NOW, accept_unknown=True).status is AuthStatus.ACCEPTED


def test_expiry_turns_an_accepted_token_expired_exactly_at_expiry() -> None:
    token = IdTokenRecord("T", AuthStatus.ACCEPTED, NOW)
    assert auth.decide(token, NOW - timedelta(seconds=1)).status is AuthStatus.ACCEPTED
    assert auth.decide(token, NOW).status is AuthStatus.EXPIRED


def test_blocked_token_stays_blocked() -> None:
    assert auth.decide(IdTokenRecord("T", AuthStatus.BLOCKED), NOW).status is AuthStatus.BLOCKED


def register(at: datetime, value: str, unit: str = "Wh", phase: str | None = None) -> MeterSample:
    return MeterSample(at, value, transactions.ENERGY_REGISTER, phase=phase, unit=unit)


def test_register_reading_converts_kwh_and_takes_the_latest() -> None:
    samples = [register(NOW, "1.5", "kWh"), register(NOW + timedelta(minutes=1), "2.25", "kWh")]
    assert transactions.register_wh(samples) == 2250


def test_register_reading_sums_phases_when_no_total_is_sent() -> None:
    samples = [register(NOW, "100", phase=p) for p in ("L1", "L2", "L3")]
    assert transactions.register_wh(samples) == 300


def test_register_reading_ignores_signed_blobs_and_other_measurands() -> None:
    samples = [MeterSample(NOW, "16", "Current.Import"), register(NOW, "OCMF|{...}")]
    assert transactions.register_wh(samples) is None


def test_stop_sets_energy_and_a_second_stop_changes_nothing() -> None:
    tx = replace(
        transactions.from_start(StartRequest("S", 1, "T", 1000, NOW)),
        id=1,
    )
    stopped = transactions.apply_stop(tx, StopRequest("S", 1, 4500, NOW + timedelta(hours=1)))
    assert stopped.energy_wh == 3500
    assert stopped.stop_reason == "Local"
    again = transactions.apply_stop(stopped, StopRequest("S", 1, 9999, NOW + timedelta(hours=2)))
    assert again == stopped


def event(kind: TxEventType, seq: int, minutes: int, wh: int) -> TransactionEvent:
    at = NOW + timedelta(minutes=minutes)
    return TransactionEvent(
        "S", "TX", seq, kind, at, "MeterValuePeriodic", 1, 1, samples=(register(at, str(wh)),)
    )


@given(st.lists(st.integers(min_value=0, max_value=5_000), min_size=1, max_size=12))
def test_folding_events_twice_gives_the_same_session(steps: list[int]) -> None:
    readings = [sum(steps[: i + 1]) for i in range(len(steps))]
    events = [event(TxEventType.STARTED, 0, 0, readings[0])]
    events += [event(TxEventType.UPDATED, i, i, wh) for i, wh in enumerate(readings[1:], start=1)]
    events.append(event(TxEventType.ENDED, len(readings), len(readings), readings[-1]))
    once = None
    for e in events:
        once = transactions.apply_event(once, e)
    twice = None
    for e in events:
        twice = transactions.apply_event(transactions.apply_event(twice, e), e)
    assert once == twice
    assert once is not None
    assert once.energy_wh == readings[-1] - readings[0]
    assert not once.active


def test_late_started_event_moves_the_start_back() -> None:
    updated = transactions.apply_event(None, event(TxEventType.UPDATED, 1, 10, 800))
    started = transactions.apply_event(updated, event(TxEventType.STARTED, 0, 0, 200))
    assert started.started_at == NOW
    assert started.energy_wh == 600


def test_a_reused_transaction_id_is_a_new_session_only_after_the_end() -> None:
    events = [event(TxEventType.STARTED, 0, 0, 100), event(TxEventType.ENDED, 1, 60, 900)]
    ended = None
    for e in events:
        ended = transactions.apply_event(ended, e)
    assert ended is not None
    seen = {e.seq_no: e.timestamp for e in events}
    # The same messages again are duplicates, not sessions.
    assert not any(transactions.is_new_session(ended, e, seen) for e in events)
    # The counter was reset: seqNo 0 again, an hour later; or a Started event after the end.
    assert transactions.is_new_session(ended, event(TxEventType.STARTED, 0, 120, 900), seen)
    assert transactions.is_new_session(ended, event(TxEventType.STARTED, 7, 120, 900), seen)
    assert transactions.is_new_session(ended, event(TxEventType.UPDATED, 1, 120, 900), seen)
    # A Started event queued offline and dated before the end belongs to the session that ended.
    assert not transactions.is_new_session(ended, event(TxEventType.STARTED, 5, 30, 500), seen)
    assert not transactions.is_new_session(ended, event(TxEventType.UPDATED, 5, 120, 900), seen)
    # A running session is never replaced.
    running = transactions.apply_event(None, events[0])
    assert not transactions.is_new_session(running, event(TxEventType.STARTED, 0, 120, 900), seen)


def test_password_hash_verifies_only_the_right_password() -> None:
    stored = hash_password("correct horse", b"0123456789abcdef", iterations=1000)
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored)
    assert not verify_password("correct horse", "garbage")


@pytest.mark.parametrize("value", ["inf", "nan", "1.7e305", "-1e400"])
def test_readings_that_cannot_be_whole_wh_are_unreadable(value: str) -> None:
    # 1.7e305 kWh is finite, but not in Wh: found by the frame fuzz test.
    assert transactions.register_wh([register(NOW, value, unit="kWh")]) is None

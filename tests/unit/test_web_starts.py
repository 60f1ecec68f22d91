"""``web.starts``: a start's ticket leads to the session it began, once, and only there."""

from __future__ import annotations

from datetime import UTC, datetime

from chargeflow.csm.model import TransactionRecord
from chargeflow.web.starts import StartsFromHere

AT = datetime(2026, 5, 1, tzinfo=UTC)


def session(tx_id: int, station_id: str = "S", token: str = "web-driver") -> TransactionRecord:
    return TransactionRecord(tx_id, station_id, 1, 1, AT, 0, id_token=token)


def test_the_first_new_session_with_the_token_is_the_tickets() -> None:
    starts = StartsFromHere(lifetime_s=300)
    ticket = starts.add("S", "web-driver", [session(1)], now=0)
    assert starts.session_of(ticket, "S", [session(1)], now=10) is None  # running before: not ours
    assert starts.session_of(ticket, "OTHER", [session(2, "OTHER")], now=10) is None
    assert starts.session_of(ticket, "S", [session(1), session(2, token="CARD")], now=10) is None
    mine = starts.session_of(ticket, "S", [session(1), session(3)], now=20)
    assert mine is not None
    assert mine.id == 3
    assert starts.session_of(ticket, "S", [session(3)], now=21) is None  # used up


def test_a_ticket_expires_and_the_tickets_kept_are_bounded() -> None:
    starts = StartsFromHere(lifetime_s=300, max_tickets=10)
    ticket = starts.add("S", "web-driver", [], now=0)
    assert not starts.pending(ticket, "S", now=301)
    assert starts.session_of(ticket, "S", [session(1)], now=301) is None
    tickets = [starts.add("S", "t", [], now=float(n)) for n in range(100)]
    assert starts.pending(tickets[-1], "S", now=100)
    assert not starts.pending(tickets[0], "S", now=100)
    assert not starts.pending(None, "S", now=0)

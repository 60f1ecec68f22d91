"""Which browser started which session, so that a driver who starts from the station's page gets to
the session without its code or link.

A start from the web page is a remote start: the station accepts it, and its session begins later,
when the cable is in. So the browser that asked gets a ticket (an HttpOnly cookie), remembered here
with the station, the id token sent and the sessions already running there; the first session at
that station with that token that was not running then is the ticket's, for ``LIFETIME_S``. A station
times out a remote start it cannot begin within a few minutes at most (1.6 ConnectionTimeOut,
2.0.1 EVConnectionTimeOut), so a ticket needs to live no longer.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from chargeflow.csm.model import TransactionRecord

LIFETIME_S = 300.0
MAX_TICKETS = 1_000


@dataclass(frozen=True, slots=True)
class _Ticket:
    station_id: str
    id_token: str
    running_before: frozenset[int]
    until: float


class StartsFromHere:
    def __init__(self, lifetime_s: float = LIFETIME_S, max_tickets: int = MAX_TICKETS) -> None:
        self._lifetime_s = lifetime_s
        self._max_tickets = max_tickets
        self._tickets: dict[str, _Ticket] = {}

    def add(self, station_id: str, id_token: str, running: Sequence[TransactionRecord], now: float) -> str:
        """A new ticket for a start the station accepted."""
        if len(self._tickets) >= self._max_tickets:
            self._tickets = {k: t for k, t in self._tickets.items() if t.until > now}
            while len(self._tickets) >= self._max_tickets:  # the oldest go first
                del self._tickets[next(iter(self._tickets))]
        ticket = secrets.token_urlsafe(24)
        running_before = frozenset(tx.id for tx in running)
        self._tickets[ticket] = _Ticket(station_id, id_token, running_before, now + self._lifetime_s)
        return ticket

    def pending(self, ticket: str | None, station_id: str, now: float) -> bool:
        found = self._tickets.get(ticket or "")
        return found is not None and found.station_id == station_id and found.until > now

    def session_of(
        self, ticket: str | None, station_id: str, running: Sequence[TransactionRecord], now: float
    ) -> TransactionRecord | None:
        """The session the ticket's start began, once it runs (and the ticket is then used up)."""
        if not ticket or not self.pending(ticket, station_id, now):
            return None
        found = self._tickets[ticket]
        for tx in sorted(running, key=lambda t: t.id):
            if tx.id not in found.running_before and tx.id_token == found.id_token:
                del self._tickets[ticket]
                return tx
        return None

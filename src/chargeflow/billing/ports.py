"""What billing keeps and reads, as a port: ``store`` provides the SQL and the in-memory adapters.

The store also translates the CSM's sessions into billing's terms (``FinishedSession``, ``SessionStart``):
billing and the CSM never import each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chargeflow.billing.attribution import Shares
from chargeflow.billing.cdr import FinishedSession
from chargeflow.billing.tariff import Price


@dataclass(frozen=True, slots=True)
class SessionStart:
    """What the tariff selection needs of a session, at its start."""

    session_id: str
    evse_id: str  # the station's id
    id_token: str | None
    start: datetime


@dataclass(frozen=True, slots=True)
class CdrRecord:
    """A stored CDR: its OCPI JSON and the figures reports sum, as exact values."""

    id: str
    session_id: str
    evse_id: str
    id_token: str
    start: datetime
    end: datetime
    currency: str
    energy_wh: int
    cost: Price
    signature: str  # billing.ocmf.SignatureStatus
    tariff_id: str | None
    ocpi: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionTariff:
    """The tariff chosen when a session started; ``tariff`` None: none applied, the session is free."""

    tariff: dict[str, Any] | None


class BillingStore(Protocol):
    async def api_tariffs(self) -> Sequence[dict[str, Any]]:
        """The tariffs set through the API, in order, each ``{tariff, stations, token_groups}``."""
        ...

    async def replace_api_tariffs(self, entries: Sequence[dict[str, Any]]) -> None: ...

    async def save_session_tariff(self, session_id: str, chosen: SessionTariff, at: datetime) -> None:
        """Keep the first choice: a repeated start does not change a session's tariff."""
        ...

    async def session_tariff(self, session_id: str) -> SessionTariff | None: ...

    async def save_cdr(self, record: CdrRecord) -> bool:
        """Store the CDR unless its session has one already; whether it was stored."""
        ...

    async def get_cdr(self, cdr_id: str) -> CdrRecord | None: ...

    async def list_cdrs(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Sequence[CdrRecord]:
        """CDRs of the sessions started in [since, until), oldest first."""
        ...

    async def add_shares(self, shares: Mapping[str, Shares]) -> None:
        """Add one step's source shares to each session's running totals, in one transaction."""
        ...

    async def shares(self) -> dict[str, Shares]:
        """Every session's source totals so far."""
        ...

    async def session_start(self, session_id: str) -> SessionStart | None: ...

    async def finished_session(self, session_id: str) -> FinishedSession | None:
        """The session with its meter samples if it has ended, else None."""
        ...

    async def finished_without_cdr(self) -> Sequence[str]:
        """Ended sessions that have no CDR yet (the server stopped between the stop and the CDR)."""
        ...

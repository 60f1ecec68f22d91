"""Billing's store in memory: the fake for tests, held to the same contract tests as ``store.billing``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from chargeflow.billing.attribution import Shares
from chargeflow.billing.cdr import FinishedSession
from chargeflow.billing.ports import CdrRecord, SessionStart, SessionTariff
from chargeflow.store.billing import read_finished_session, read_session_start
from chargeflow.store.memory import MemoryRepository


class MemoryBillingStore:
    def __init__(self, sessions: MemoryRepository) -> None:
        self._sessions = sessions
        self.tariffs: list[dict[str, Any]] = []
        self.session_tariffs: dict[str, SessionTariff] = {}
        self.cdrs: dict[str, CdrRecord] = {}
        self.sources: dict[str, Shares] = {}

    async def api_tariffs(self) -> Sequence[dict[str, Any]]:
        return list(self.tariffs)

    async def replace_api_tariffs(self, entries: Sequence[dict[str, Any]]) -> None:
        self.tariffs = list(entries)

    async def save_session_tariff(self, session_id: str, chosen: SessionTariff, at: datetime) -> None:
        self.session_tariffs.setdefault(session_id, chosen)

    async def session_tariff(self, session_id: str) -> SessionTariff | None:
        return self.session_tariffs.get(session_id)

    async def save_cdr(self, record: CdrRecord) -> bool:
        if any(c.session_id == record.session_id for c in self.cdrs.values()):
            return False
        self.cdrs[record.id] = record
        return True

    async def get_cdr(self, cdr_id: str) -> CdrRecord | None:
        return self.cdrs.get(cdr_id)

    async def list_cdrs(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Sequence[CdrRecord]:
        found = [
            c
            for c in self.cdrs.values()
            if (since is None or c.start >= since) and (until is None or c.start < until)
        ]
        return sorted(found, key=lambda c: (c.start, c.id))

    async def add_shares(self, shares: Mapping[str, Shares]) -> None:
        for session, add in shares.items():
            self.sources[session] = self.sources.get(session, Shares()) + add

    async def shares(self) -> dict[str, Shares]:
        return dict(self.sources)

    async def session_start(self, session_id: str) -> SessionStart | None:
        return await read_session_start(self._sessions, session_id)

    async def finished_session(self, session_id: str) -> FinishedSession | None:
        return await read_finished_session(self._sessions, session_id)

    async def finished_without_cdr(self) -> Sequence[str]:
        billed = {c.session_id for c in self.cdrs.values()}
        ended = await self._sessions.list_transactions(active=False)
        return [str(tx.id) for tx in sorted(ended, key=lambda t: t.id) if str(tx.id) not in billed]

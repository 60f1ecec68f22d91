"""The billing service: the one place the CSM's session hooks, the live control loop and the API call.

It applies the pure rules (``setup``, ``selection``, ``cdr``, ``attribution``, ``report``) and keeps their
results through the ``BillingStore`` port:

* when a session starts, the tariff it gets is chosen and kept (OCPI: the tariff valid at the start);
* when it ends, its CDR is built from the stored meter values under that tariff, priced and stored —
  once: a CDR that exists is never rebuilt, and ``catch_up`` builds the ones a crash left out;
* every control step, the step's PV, battery and grid energy is attributed to the running sessions and
  added to their totals;
* reports sum the stored CDRs with those totals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from chargeflow.billing.attribution import Shares, SiteStep, attribute_step, capped
from chargeflow.billing.cdr import Cdr, build_cdr, cdr_json
from chargeflow.billing.ports import BillingStore, CdrRecord, SessionStart, SessionTariff
from chargeflow.billing.report import Key, ReportRow, SessionRecord, build_report
from chargeflow.billing.schema import parse_tariff
from chargeflow.billing.setup import BillingRules, TariffEntry, choose, free_tariff, parse_entries
from chargeflow.billing.tariff import Tariff

log = logging.getLogger(__name__)


class BillingService:
    def __init__(self, store: BillingStore, rules: BillingRules, tz: tzinfo) -> None:
        self.store = store
        self.rules = rules
        self.tz = tz
        self._api_entries: list[TariffEntry] | None = None  # parsed once, then kept with the store

    # Tariffs ----------------------------------------------------------------------------------------

    async def entries(self) -> list[TariffEntry]:
        """The site's tariffs in selection order: the API's, then the site file's."""
        if self._api_entries is None:
            self._api_entries = parse_entries(list(await self.store.api_tariffs()), "stored tariffs")
        return [*self._api_entries, *self.rules.tariffs]

    async def set_api_tariffs(self, data: Any) -> list[TariffEntry]:
        """Replace the API's tariffs; ``BillingInputError`` (naming the field) leaves them as they were."""
        entries = parse_entries(data)
        await self.store.replace_api_tariffs(
            [{k: v for k, v in e.as_json().items() if k != "origin"} for e in entries]
        )
        self._api_entries = entries
        return entries

    async def choose(self, start: SessionStart) -> TariffEntry | None:
        return choose(
            await self.entries(),
            self.rules,
            evse_id=start.evse_id,
            id_token=start.id_token,
            start=start.start,
        )

    async def tariff_of(self, start: SessionStart) -> Tariff:
        """The session's tariff: the one kept at its start, else the one it would get now (a session not
        yet stored has an empty ``session_id``)."""
        kept = await self.store.session_tariff(start.session_id) if start.session_id else None
        if kept is not None:
            return self._tariff(kept)
        entry = await self.choose(start)
        return entry.assignment.tariff if entry is not None else free_tariff(self.rules.currency)

    def _tariff(self, kept: SessionTariff) -> Tariff:
        if kept.tariff is None:
            return free_tariff(self.rules.currency)
        return parse_tariff(kept.tariff, "the session's tariff")

    # Session hooks ----------------------------------------------------------------------------------

    async def session_started(self, start: SessionStart) -> None:
        entry = await self.choose(start)
        await self.store.save_session_tariff(
            start.session_id, SessionTariff(entry.source if entry is not None else None), start.start
        )

    async def session_ended(self, session_id: str) -> CdrRecord | None:
        """Build, price and store the session's CDR; the stored one if it exists; None while it runs."""
        existing = await self.store.get_cdr(session_id)
        if existing is not None:
            return existing
        session = await self.store.finished_session(session_id)
        if session is None:
            return None
        start = SessionStart(session_id, session.evse_id, session.id_token or None, session.start)
        tariff = await self.tariff_of(start)
        cdr = build_cdr(session_id, session, tariff, self.tz, self.rules.meter_keys.get(session.evse_id))
        record = record_of(cdr)
        if not await self.store.save_cdr(record):
            return await self.store.get_cdr(session_id)
        return record

    async def catch_up(self) -> list[str]:
        """Build the CDRs of ended sessions that have none (a crash between the stop and the CDR)."""
        built = []
        for session_id in await self.store.finished_without_cdr():
            try:
                if await self.session_ended(session_id) is not None:
                    built.append(session_id)
            except ValueError:
                log.exception("session %s: no CDR can be built from its meter values", session_id)
        return built

    # Energy sources ---------------------------------------------------------------------------------

    async def record_step(self, step: SiteStep) -> dict[str, Shares]:
        """Attribute one step's energy (site rule) and add each session's shares to its totals."""
        shares = attribute_step(step, self.rules.rule)
        await self.store.add_shares({s: shares[s] for s in step.ev_wh})
        return shares

    # Reports ----------------------------------------------------------------------------------------

    async def cdrs(self, since: date | None = None, until: date | None = None) -> Sequence[CdrRecord]:
        """The CDRs of sessions started on the site's dates [since, until], both included."""
        low = datetime.combine(since, time(0), self.tz) if since is not None else None
        high = datetime.combine(until + timedelta(days=1), time(0), self.tz) if until is not None else None
        return await self.store.list_cdrs(low, high)

    async def report(self, by: Sequence[Key], since: date | None, until: date | None) -> list[ReportRow]:
        shares = await self.store.shares()
        records = []
        for cdr in await self.cdrs(since, until):
            found = shares.get(cdr.session_id)
            sources = capped(found, cdr.energy_wh) if found is not None else None
            records.append(
                SessionRecord(
                    cdr.id,
                    cdr.evse_id,
                    cdr.id_token,
                    cdr.start,
                    cdr.currency,
                    cdr.energy_wh,
                    cdr.cost,
                    sources,
                )
            )
        # years of sessions are summed on a worker thread, not on the event loop (issue 13, item 8)
        return await asyncio.to_thread(build_report, records, by, self.tz)


def record_of(cdr: Cdr) -> CdrRecord:
    s = cdr.session
    return CdrRecord(
        id=cdr.id,
        session_id=s.session_id,
        evse_id=s.evse_id,
        id_token=s.id_token,
        start=s.start,
        end=s.end,
        currency=cdr.cost.currency,
        energy_wh=cdr.total_energy_wh,
        cost=cdr.cost.total_cost,
        signature=str(cdr.signature.status),
        tariff_id=cdr.tariff_id,
        ocpi=cdr_json(cdr),
    )

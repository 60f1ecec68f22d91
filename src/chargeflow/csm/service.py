"""The CSM service: the one place protocol handlers call. It applies the pure rules and stores facts.

Each method is one acknowledged fact: it returns only after the repository has stored it, so that an
answer sent to a station always means the message is on disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chargeflow.clock import Clock
from chargeflow.csm import auth, reservations, transactions
from chargeflow.csm.model import (
    AuthDecision,
    BootDecision,
    BootInfo,
    ChargingNeeds,
    ConnectorStatus,
    IdTokenRecord,
    MeterSample,
    ReservationRecord,
    ReservationStatus,
    StartRequest,
    StationRecord,
    StopRequest,
    TransactionEvent,
    TransactionRecord,
    TxEventType,
)
from chargeflow.csm.passwords import hash_password, verify_password
from chargeflow.csm.ports import CsmRepository, SessionHooks
from chargeflow.csm.throttle import Admission

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CsmConfig:
    heartbeat_interval_s: int = 300
    auto_register: bool = False
    accept_unknown_tokens: bool = False


class CsmService:
    def __init__(
        self,
        repository: CsmRepository,
        clock: Clock,
        config: CsmConfig,
        new_salt: Callable[[], bytes],
        hooks: SessionHooks | None = None,
    ) -> None:
        self.repository = repository
        self._clock = clock
        self._config = config
        self._new_salt = new_salt
        self.hooks = hooks

    async def _tell(self, tx: TransactionRecord) -> None:
        """Tell the hooks that a session started or ended. The message is stored whatever they do: a
        failure is logged, and billing builds a missing CDR when it next starts (``catch_up``)."""
        if self.hooks is None:
            return
        try:
            if tx.active:
                await self.hooks.session_started(tx)
            else:
                await self.hooks.session_ended(tx)
        except Exception:
            log.exception("session %s: the session hook failed", tx.id)

    # Stations -------------------------------------------------------------------------------------

    async def register_station(self, station_id: str, password: str | None) -> StationRecord:
        existing = await self.repository.get_station(station_id)
        # PBKDF2 takes tens of milliseconds by design: off the event loop, which serves every station.
        hashed = await asyncio.to_thread(hash_password, password, self._new_salt()) if password else None
        station = replace(
            existing or StationRecord(station_id, registered_at=self._clock.now()), password_hash=hashed
        )
        await self.repository.save_station(station)
        return station

    async def set_password_hash(self, station_id: str, password_hash: str | None) -> StationRecord:
        """A station's credentials as the site file gives them (already hashed): the file is the
        deliberate place to set or change them."""
        existing = await self.repository.get_station(station_id)
        station = replace(
            existing or StationRecord(station_id, registered_at=self._clock.now()),
            password_hash=password_hash,
        )
        if existing is None or existing.password_hash != password_hash:
            await self.repository.save_station(station)
        return station

    async def authenticate(self, station_id: str, password: str | None) -> bool:
        """Security profile 1: the station's password, or auto-registration of an unknown station
        (which then keeps the password it first connected with)."""
        return await self.admission(station_id, password) is not Admission.REFUSED

    async def admission(self, station_id: str, password: str | None) -> Admission:
        """``authenticate``, telling apart a station that proved its password (or registered just now)
        from one known by its id alone, which anyone who knows the id can claim to be."""
        station = await self.repository.get_station(station_id)
        if station is None:
            if not self._config.auto_register:
                return Admission.REFUSED
            await self.register_station(station_id, password)
            return Admission.REGISTERED if password else Admission.OPEN
        if station.password_hash is None:
            return Admission.OPEN  # known by id alone (listed in the site file, or registered without one)
        if password is None:
            return Admission.REFUSED
        right = await asyncio.to_thread(verify_password, password, station.password_hash)
        return Admission.VERIFIED if right else Admission.REFUSED

    async def admit_certified(self, station_id: str) -> bool:
        """Security profile 3: a station whose client certificate names it is admitted if it is known,
        or registered (without a password) where auto-registration is on."""
        if await self.repository.get_station(station_id) is not None:
            return True
        if not self._config.auto_register:
            return False
        await self.register_station(station_id, None)
        return True

    async def boot(self, station_id: str, ocpp_version: str, info: BootInfo) -> BootDecision:
        now = self._clock.now()
        station = await self.repository.get_station(station_id) or StationRecord(
            station_id, registered_at=now
        )
        await self.repository.save_station(
            replace(
                station,
                ocpp_version=ocpp_version,
                vendor=info.vendor,
                model=info.model,
                serial_number=info.serial_number,
                firmware_version=info.firmware_version,
                last_boot_at=now,
                last_heartbeat_at=now,
            )
        )
        return BootDecision(accepted=True, current_time=now, interval_s=self._config.heartbeat_interval_s)

    def now(self) -> datetime:
        """The CSM's clock, for the edges that check a station's timestamps against it."""
        return self._clock.now()

    async def heartbeat(self, station_id: str) -> datetime:
        now = self._clock.now()
        station = await self.repository.get_station(station_id)
        if station is not None:
            await self.repository.save_station(replace(station, last_heartbeat_at=now))
        return now

    async def connected(self, station_id: str, ocpp_version: str) -> None:
        station = await self.repository.get_station(station_id)
        if station is not None and station.ocpp_version != ocpp_version:
            await self.repository.save_station(replace(station, ocpp_version=ocpp_version))

    async def status(self, station_id: str, status: ConnectorStatus) -> None:
        if status.timestamp is None:
            status = replace(status, timestamp=self._clock.now())
        await self.repository.record_status(station_id, status)

    # Authorisation (AuCh) ---------------------------------------------------------------------------

    async def put_token(self, token: IdTokenRecord) -> None:
        await self.repository.put_id_token(token)

    async def authorize(self, id_token: str) -> AuthDecision:
        record = await self.repository.get_id_token(id_token)
        return auth.decide(record, self._clock.now(), accept_unknown=self._config.accept_unknown_tokens)

    # Transactions (EnCh) ---------------------------------------------------------------------------

    async def start_transaction(self, start: StartRequest) -> tuple[int, AuthDecision]:
        decision = await self.authorize(start.id_token)
        outcome = await self.repository.start_transaction(start, transactions.from_start(start))
        if start.reservation_id is not None and not outcome.duplicate:
            await self.repository.update_reservation(
                start.station_id, start.reservation_id, ReservationStatus.USED
            )
        if not outcome.duplicate:
            await self._tell(outcome.transaction)
        return outcome.transaction.id, decision

    # Reservations ----------------------------------------------------------------------------------

    async def reserve(
        self, station_id: str, connector_id: int, id_token: str, expiry: datetime
    ) -> ReservationRecord:
        """A new reservation, stored before ReserveNow is sent so that its id is ours and unique."""
        return await self.repository.create_reservation(
            ReservationRecord(0, station_id, connector_id, id_token, expiry)
        )

    async def reservation_answered(
        self, station_id: str, reservation_id: int, answer: str
    ) -> ReservationRecord | None:
        status = reservations.after_answer(answer)
        return await self.repository.update_reservation(station_id, reservation_id, status, answer)

    async def reservation_cancelled(
        self, station_id: str, reservation_id: int, answer: str
    ) -> ReservationRecord | None:
        status = reservations.after_cancel(answer)
        if status is None:
            return await self.repository.get_reservation(reservation_id)
        return await self.repository.update_reservation(station_id, reservation_id, status, answer)

    async def reservation_notice(self, station_id: str, reservation_id: int, notice: str) -> None:
        status = reservations.after_notice(notice)
        if status is not None:
            await self.repository.update_reservation(station_id, reservation_id, status, notice)

    async def stop_transaction(self, stop: StopRequest) -> AuthDecision | None:
        stopped = await self.repository.stop_transaction(stop, lambda tx: transactions.apply_stop(tx, stop))
        if stopped is not None and not stopped.active:
            await self._tell(stopped)
        return await self.authorize(stop.id_token) if stop.id_token else None

    async def meter_values(
        self, station_id: str, evse_id: int, transaction_id: int | None, samples: Sequence[MeterSample]
    ) -> None:
        await self.repository.add_meter_values(
            station_id,
            evse_id,
            transaction_id,
            samples,
            lambda tx: transactions.apply_meter_values(tx, samples),
        )

    async def transaction_event(self, event: TransactionEvent) -> AuthDecision | None:
        outcome = await self.repository.apply_event(event, lambda tx: transactions.apply_event(tx, event))
        tx = outcome.transaction
        # Only the Started and Ended events call the hooks: the Updated ones are the hot path.
        if not outcome.duplicate and (event.event_type is TxEventType.STARTED or not tx.active):
            await self._tell(tx)
        return await self.authorize(event.id_token) if event.id_token else None

    async def charging_needs(self, needs: ChargingNeeds) -> bool:
        """ChPr: the EV's departure time and energy need become the running session's preferences."""
        return await self.repository.set_charging_needs(needs) is not None

    async def record_charging_profile(
        self, station_id: str, evse_id: int, profile: dict[str, Any], status: str
    ) -> None:
        await self.repository.record_charging_profile(station_id, evse_id, profile, status, self._clock.now())

    async def sessions(
        self, station_id: str | None = None, active: bool | None = None
    ) -> list[TransactionRecord]:
        return list(await self.repository.list_transactions(station_id, active))

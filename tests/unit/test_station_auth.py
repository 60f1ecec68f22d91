"""Security profile 1 decisions of the CSM service, on the in-memory repository."""

from __future__ import annotations

from datetime import UTC, datetime

from chargeflow.clock import ManualClock
from chargeflow.csm.model import StationRecord
from chargeflow.csm.service import CsmConfig, CsmService
from chargeflow.store.memory import MemoryRepository


def service(auto_register: bool) -> tuple[CsmService, MemoryRepository]:
    repo = MemoryRepository()
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    return CsmService(repo, clock, CsmConfig(auto_register=auto_register), new_salt=lambda: b"salt" * 4), repo


async def test_unknown_station_refused_without_auto_registration() -> None:
    csm, repo = service(auto_register=False)
    assert not await csm.authenticate("NEW", "whatever-password")
    assert "NEW" not in repo.stations


async def test_auto_registration_keeps_the_first_password() -> None:
    csm, repo = service(auto_register=True)
    assert await csm.authenticate("NEW", "first-password-123")
    assert repo.stations["NEW"].password_hash is not None
    assert await csm.authenticate("NEW", "first-password-123")
    assert not await csm.authenticate("NEW", "another-password")
    assert not await csm.authenticate("NEW", None)


async def test_station_known_without_password_is_accepted_by_id() -> None:
    csm, repo = service(auto_register=False)
    await repo.save_station(StationRecord("SITE-1"))
    assert await csm.authenticate("SITE-1", None)
    assert await csm.authenticate("SITE-1", "anything")

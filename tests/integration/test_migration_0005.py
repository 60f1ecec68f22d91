"""Migration 0005 on a database with sessions: their events move to their session, and ids may repeat."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import Connection, text

from chargeflow.store.database import _alembic_config, make_engine
from tests.integration.test_flow_store import backend, database

__all__ = ["backend"]  # the fixture, parametrised over SQLite and PostgreSQL

NEW_SESSION = "INSERT INTO transactions (station_id, external_id, evse_id, connector_id, started_at) VALUES"


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(_alembic_config(connection), revision)


async def test_events_keep_their_session_and_a_station_may_reuse_a_transaction_id(
    backend: str, tmp_path: Path
) -> None:
    async with database(backend, tmp_path) as (url, options):
        engine = make_engine(url, **options)
        try:
            async with engine.begin() as c:
                await c.run_sync(_upgrade, "0004")
                await c.execute(text(f"{NEW_SESSION} ('S', 'TX-1', 1, 1, '2026-01-01 00:00:00')"))
                await c.execute(
                    text(
                        "INSERT INTO transaction_events (station_id, external_id, seq_no, event_type,"
                        " trigger_reason, timestamp, offline)"
                        " VALUES ('S', 'TX-1', 0, 'Started', 'Authorized', '2026-01-01 00:00:00', false)"
                    )
                )
            async with engine.begin() as c:
                await c.run_sync(_upgrade, "head")
                rows = (await c.execute(text("SELECT transaction_id, seq_no FROM transaction_events"))).all()
                assert [tuple(r) for r in rows] == [(1, 0)]
                # the same id again: a new session after a counter reset
                await c.execute(text(f"{NEW_SESSION} ('S', 'TX-1', 1, 1, '2026-02-01 00:00:00')"))
                await c.execute(
                    text(
                        "INSERT INTO transaction_events (transaction_id, station_id, external_id, seq_no,"
                        " event_type, trigger_reason, timestamp, offline)"
                        " VALUES (2, 'S', 'TX-1', 0, 'Started', 'Authorized', '2026-02-01 00:00:00', false)"
                    )
                )
        finally:
            await engine.dispose()

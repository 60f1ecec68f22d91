"""The site's power flows per control step on SQLAlchemy (SQLite, PostgreSQL): the dashboard's history.

A control step hands its sample over and goes on: the row is written with the group writer's next batch
(``insert_later``: one multi-row INSERT per batch) and nobody waits for it. A range is read back averaged
into at most ``max_points`` time buckets by the database, so that seven days of 10 s steps (60 480 rows)
come back as a few hundred points. Samples older than ``keep`` are deleted with the first sample after a
start, then once a day.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, Integer, case, cast, extract, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from chargeflow.site.flows import FlowSample
from chargeflow.store.tables import flow_samples
from chargeflow.store.writer import GroupWriter, WriteContext

log = logging.getLogger(__name__)

KEEP: Final = timedelta(days=400)  # a year and a month: this month can be compared with last year's
PRUNE_EVERY: Final = timedelta(days=1)
REASON_CHARS: Final = 100  # the column's width; circuit names make fuse codes the longest
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_INSERT: Final = flow_samples.insert()  # one statement object: the writer batches rows per statement


def _row(sample: FlowSample) -> dict[str, Any]:
    reason = sample.limit_reason[:REASON_CHARS] if sample.limit_reason else None
    return {
        "at": sample.at,
        "grid_w": sample.grid_w,
        "building_w": sample.building_w,
        "pv_w": sample.pv_w,
        "ess_w": sample.ess_w,
        "ev_w": sample.ev_w,
        "granted_w": sample.granted_w,
        "limit_reason": reason,
    }


def _delete_before(older_than: datetime) -> Callable[[WriteContext], int]:
    statement = flow_samples.delete().where(flow_samples.c.at < older_than)

    def write(ctx: WriteContext) -> int:
        return ctx.connection.execute(statement).rowcount

    return write


def _seconds(dialect: str, start_s: int, bucket_s: int) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """Each row's bucket (whole ``bucket_s`` since ``start_s``, exact) and its seconds since ``start_s``
    (to average), in the database's own terms; the stored ``at`` is naive UTC."""
    at = flow_samples.c.at
    if dialect == "sqlite":  # ISO text: whole seconds exactly, the Julian day (to ~20 µs) for the mean
        whole = cast(func.strftime("%s", at), Integer) - start_s
        return whole // bucket_s, (func.julianday(at) - 2440587.5) * 86400.0 - start_s
    seconds = extract("epoch", at) - start_s  # PostgreSQL: exact, with the microseconds
    return func.floor(seconds / bucket_s), seconds


class FlowStore:
    """The flow history on one database, written through its group writer."""

    def __init__(self, engine: AsyncEngine, writer: GroupWriter, keep: timedelta = KEEP) -> None:
        self._engine = engine
        self._writer = writer
        self._keep = keep
        self._pending: set[asyncio.Future[Any]] = set()
        self._next_prune: datetime | None = None

    def add(self, sample: FlowSample) -> None:
        """Queue ``sample`` for the writer's next batch and return at once (``flush`` waits for it)."""
        row = _row(sample)
        self._track(self._writer.submit_nowait(lambda ctx: ctx.insert_later(_INSERT, [row])))
        if self._next_prune is None or sample.at >= self._next_prune:
            self._next_prune = sample.at + PRUNE_EVERY
            self._track(self._writer.submit_nowait(_delete_before(sample.at - self._keep)))

    def _track(self, future: asyncio.Future[Any]) -> None:
        self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and (error := future.exception()) is not None:
            # a lost sample is a gap in a chart, not a reason to stop the control loop
            log.warning("flow history: a write failed (%s)", error)

    async def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every sample handed over so far is committed (or has failed), or the timeout."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout_s)

    async def prune(self, older_than: datetime) -> int:
        """Delete the samples before ``older_than``; how many were deleted."""
        return await self._writer.submit(_delete_before(older_than))

    async def range(self, start: datetime, end: datetime, max_points: int) -> list[FlowSample]:
        """The samples in [start, end), oldest first, averaged into buckets of whole seconds, at most
        ``max_points`` of them. A bucket's time is its samples' mean time (to the millisecond); its reason
        is theirs where all that have one agree, else None (several limits took turns). Seven days of
        10 s steps into 720 buckets: 0.13 s on SQLite and on PostgreSQL."""
        if end <= start or max_points < 1:
            return []
        dialect = self._engine.dialect.name
        start_s = math.floor((start - EPOCH).total_seconds())
        bucket_s = max(1, math.ceil(((end - EPOCH).total_seconds() - start_s) / max_points))
        c = flow_samples.c
        bucket, seconds = _seconds(dialect, start_s, bucket_s)
        rows_in = (
            select(bucket.label("bucket"), seconds.label("seconds"), *c)
            .where(c.at >= start, c.at < end)
            .subquery()
        )
        r = rows_in.c
        reason = case((func.min(r.limit_reason) == func.max(r.limit_reason), func.min(r.limit_reason)))
        query = (
            select(
                r.bucket,
                func.avg(r.seconds),
                func.avg(r.grid_w),
                func.avg(r.building_w),
                func.avg(r.pv_w),
                func.avg(r.ess_w),
                func.avg(r.ev_w),
                func.avg(r.granted_w),
                reason,
            )
            .group_by(r.bucket)
            .order_by(r.bucket)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            FlowSample(
                EPOCH + timedelta(seconds=start_s, milliseconds=round(float(mean_s) * 1000)),
                float(grid),
                float(building),
                float(pv),
                float(ess),
                float(ev),
                None if granted is None else float(granted),
                limit_reason,
            )
            for _, mean_s, grid, building, pv, ess, ev, granted, limit_reason in rows
        ]

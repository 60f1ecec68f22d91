"""Group commit: many messages' writes in one database transaction, each caller answered after it.

A station's message is acknowledged only once its write is committed, so batching loses nothing; it
turns one commit per message into one per batch. Each batch runs as one synchronous function:

- on SQLite, on a thread of its own with the standard ``sqlite3`` driver, so a batch costs one hop
  between the event loop and that thread (through aiosqlite every statement would cost one);
- on PostgreSQL, on the asyncpg connection through SQLAlchemy's ``run_sync``.

When an operation fails, the batch is rolled back and its operations are run again one by one, so
only the failing one reports the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Executable, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine

from chargeflow.store.bulk import BulkWriter
from chargeflow.store.database import is_sqlite, sqlite_pragmas

log = logging.getLogger(__name__)

T = TypeVar("T")


class WriteContext:
    """What one batch's operations share: the connection, rows to write in bulk at the end of the batch
    (one ``executemany`` per statement instead of one statement per message), and what to do once the
    batch is committed."""

    def __init__(self, connection: Connection, bulk: BulkWriter) -> None:
        self.connection = connection
        self._bulk = bulk
        self.overlay: dict[Any, Any] = {}  # records changed in this batch, not yet committed
        self._inserts: dict[Executable, list[dict[str, Any]]] = {}
        self._updates: dict[Executable, dict[Any, dict[str, Any]]] = {}
        self._after_commit: list[Callable[[], None]] = []

    def insert_later(self, statement: Executable, rows: list[dict[str, Any]]) -> None:
        if rows:  # an executemany with no rows would run the statement once, without parameters
            self._inserts.setdefault(statement, []).extend(rows)

    def update_later(self, statement: Executable, key: Any, parameters: dict[str, Any]) -> None:
        """The last parameters given for ``key`` win: a batch writes each row once."""
        self._updates.setdefault(statement, {})[key] = parameters

    def update_pending(self, statement: Executable, key: Any) -> bool:
        return key in self._updates.get(statement, {})

    def drop_update(self, statement: Executable, key: Any) -> None:
        self._updates.get(statement, {}).pop(key, None)

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after_commit.append(action)

    def flush(self) -> None:
        for statement, by_key in self._updates.items():
            self._bulk.execute(self.connection, statement, list(by_key.values()))
        for statement, rows in self._inserts.items():
            self._bulk.execute(self.connection, statement, rows)

    def committed(self) -> None:
        for action in self._after_commit:
            action()


Operation = Callable[[WriteContext], Any]
Outcome = tuple[bool, Any]
BatchRunner = Callable[[list[Operation]], Awaitable[list[Outcome]]]

MAX_BATCH = 512


def _run_in_one_transaction(connection: Connection, operations: list[Operation]) -> list[Outcome]:
    context = WriteContext(connection, _bulk_writer(connection))
    with connection.begin():
        outcomes: list[Outcome] = [(True, op(context)) for op in operations]
        context.flush()
    context.committed()
    return outcomes


def _bulk_writer(connection: Connection) -> BulkWriter:
    """One per connection, kept in the connection's ``info`` so that it lives as long as the connection."""
    bulk = connection.info.get("chargeflow_bulk")
    if not isinstance(bulk, BulkWriter):
        bulk = connection.info["chargeflow_bulk"] = BulkWriter(connection.dialect)
    return bulk


def run_batch(connection: Connection, operations: list[Operation]) -> list[Outcome]:
    try:
        return _run_in_one_transaction(connection, operations)
    except Exception as exc:
        if len(operations) == 1:
            return [(False, exc)]
    outcomes: list[Outcome] = []
    for op in operations:
        try:
            outcomes.extend(_run_in_one_transaction(connection, [op]))
        except Exception as exc:
            outcomes.append((False, exc))
    return outcomes


class _SqliteThread:
    """One thread holding one ``sqlite3`` connection (sqlite3 connections stay on their thread)."""

    def __init__(self, async_engine: AsyncEngine) -> None:
        url = async_engine.url.set(drivername="sqlite")
        self.engine: Engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(self.engine, "connect", sqlite_pragmas)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._connection: Connection | None = None

    def _run(self, operations: list[Operation]) -> list[Outcome]:
        if self._connection is None:
            self._connection = self.engine.connect()
        return run_batch(self._connection, operations)

    async def run(self, operations: list[Operation]) -> list[Outcome]:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._run, operations)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self.engine.dispose()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self._close)
        self.executor.shutdown(wait=True)


class GroupWriter:
    """The queue of writes and the task that commits them in batches; use ``open``."""

    def __init__(self, runner: BatchRunner) -> None:
        self._runner = runner
        self._queue: asyncio.Queue[tuple[Operation, asyncio.Future[Any]]] = asyncio.Queue()
        self.batches = 0
        self.operations = 0

    async def submit(self, operation: Callable[[WriteContext], T]) -> T:
        return await self.submit_nowait(operation)

    def submit_nowait(self, operation: Callable[[WriteContext], T]) -> asyncio.Future[T]:
        """Queue ``operation`` without waiting for its commit; the future tells when it is committed (a
        caller that does not wait on it must still read its outcome, or asyncio logs it as lost)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((operation, future))  # unbounded: the callers' own count bounds it
        return future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            # A write whose caller has gone (cancelled: a handler past its timeout, a closed station
            # connection) is dropped, not run: the station is told the message failed and repeats it.
            batch = [(op, future) for op, future in batch if not future.cancelled()]
            if not batch:
                continue
            try:
                outcomes = await self._runner([op for op, _ in batch])
            except Exception as exc:  # the connection itself failed
                log.exception("database batch failed")
                outcomes = [(False, exc)] * len(batch)
            self.batches += 1
            self.operations += len(batch)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, engine: AsyncEngine) -> AsyncIterator[GroupWriter]:
        async with contextlib.AsyncExitStack() as stack:
            if is_sqlite(engine):
                thread = _SqliteThread(engine)
                stack.push_async_callback(thread.close)
                runner: BatchRunner = thread.run
            else:
                connection = await stack.enter_async_context(engine.connect())

                async def runner(operations: list[Operation]) -> list[Outcome]:
                    return await connection.run_sync(run_batch, operations)

            writer = cls(runner)
            task = asyncio.create_task(writer._run(), name="db-group-writer")
            try:
                yield writer
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                while not writer._queue.empty():
                    writer._queue.get_nowait()[1].cancel()

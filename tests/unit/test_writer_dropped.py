"""The group writer runs no write whose caller has gone (issue 13, item 6: queued work is dropped)."""

from __future__ import annotations

import asyncio
import contextlib

from chargeflow.store.writer import GroupWriter, Operation, Outcome, WriteContext


async def test_a_write_cancelled_while_it_waits_for_its_batch_is_not_run() -> None:
    release = asyncio.Event()
    ran: list[str] = []

    async def runner(operations: list[Operation]) -> list[Outcome]:
        await release.wait()
        return [(True, op(None)) for op in operations]  # type: ignore[arg-type]

    def write(name: str) -> Operation:
        def run(ctx: WriteContext) -> str:
            ran.append(name)
            return name

        return run

    writer = GroupWriter(runner)
    task = asyncio.create_task(writer._run())
    try:
        first = asyncio.create_task(writer.submit(write("first")))
        await asyncio.sleep(0)  # the first batch is taken and waits in the runner
        await asyncio.sleep(0)
        gone = asyncio.create_task(writer.submit(write("gone")))
        kept = asyncio.create_task(writer.submit(write("kept")))
        await asyncio.sleep(0)
        gone.cancel()
        release.set()
        assert await asyncio.wait_for(first, 5) == "first"
        assert await asyncio.wait_for(kept, 5) == "kept"
        assert ran == ["first", "kept"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

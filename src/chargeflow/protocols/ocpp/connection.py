"""One station's websocket: reads frames, answers its CALLs in order, and sends our CALLs with timeouts.

Two tasks per connection, owned by one TaskGroup: the reader and the call worker. The reader never
waits for a handler: it answers malformed frames at once, hands CALLs to the worker through a bounded
queue (so pipelined CALLs are kept in order and tolerated), and resolves the futures of our own CALLs.
So a handler may call back to the station it serves without deadlock, and a station's late or missing
answer delays only the caller that waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chargeflow.protocols.ocpp.budgets import OcppBudgets, TokenBucket, sample_count
from chargeflow.protocols.ocpp.frames import (
    Call,
    CallError,
    CallResult,
    ErrorKind,
    FrameError,
    OcppVersion,
    encode_call,
    encode_error,
    encode_result,
    error_code,
    parse_frame,
)
from chargeflow.protocols.ocpp.schemas import Direction, SchemaRegistry, UnknownAction

log = logging.getLogger(__name__)


class Transport(Protocol):
    """The part of a websocket connection we use (websockets' ServerConnection has it)."""

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class HandlerError(Exception):
    """Raised by a handler to answer with a CALLERROR of ``kind``."""

    def __init__(self, kind: ErrorKind, description: str) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description


class CallTimeout(TimeoutError):
    """The station did not answer our CALL in time."""


class CallRejected(Exception):
    """The station answered our CALL with a CALLERROR."""

    def __init__(self, error: CallError) -> None:
        super().__init__(f"{error.code}: {error.description}")
        self.error = error


Handler = Callable[["StationConnection", dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    strict: bool = True  # lenient: a schema violation is logged and the message accepted
    call_timeout_s: float = 30.0
    handler_timeout_s: float = 30.0  # a stuck database must not hold the station's calls forever
    budgets: OcppBudgets = field(default_factory=OcppBudgets)


class StationConnection:
    def __init__(
        self,
        station_id: str,
        version: OcppVersion,
        transport: Transport,
        handlers: dict[str, Handler],
        schemas: SchemaRegistry,
        new_message_id: Callable[[], str],
        options: ConnectionOptions,
        bucket: TokenBucket | None = None,
    ) -> None:
        """``bucket``: the station's message-rate budget where the server keeps it across connections;
        else the connection makes its own on its first CALL."""
        self.station_id = station_id
        self.version = version
        self._transport = transport
        self._handlers = handlers
        self._schemas = schemas
        self._new_message_id = new_message_id
        self.options = options
        self._pending: dict[str, asyncio.Future[CallResult | CallError]] = {}
        self._calls: asyncio.Queue[Call | None] = asyncio.Queue(options.budgets.max_queued_calls)
        self._send_lock = asyncio.Lock()
        self._call_lock = asyncio.Lock()
        self._deadlines: dict[asyncio.Task[Any], float] = {}  # the handlers running, by task
        self._expired: set[asyncio.Task[Any]] = set()
        self._watch: asyncio.TimerHandle | None = None
        self._bucket = bucket
        self._warned: set[str] = set()  # the budgets this connection has overrun, logged once each
        self.refused_calls = 0  # CALLs answered with a CALLERROR for breaking a budget
        self.dropped_calls = 0  # CALLs still queued when the connection closed, never handled

    async def close(self, reason: str) -> None:
        """Close the websocket (the station may reconnect); ``run`` then ends."""
        await self._transport.close(1000, reason)

    def validate_schema_ahead(self) -> None:
        """Compile the validators of every action this connection handles (else done on first use)."""
        for action in self._handlers:
            with contextlib.suppress(UnknownAction):
                self._schemas.validator(self.version, action, Direction.REQUEST)

    async def run(self) -> None:
        """Serve the station until its websocket closes."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._work(), name=f"ocpp-worker-{self.station_id}")
            try:
                await self._read()
            finally:
                for future in self._pending.values():
                    future.cancel()
                self._drop_queued()
                await self._calls.put(None)
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    async def _read(self) -> None:
        while True:
            try:
                text = await self._transport.recv()
            except Exception:  # the websocket closed, cleanly or not
                return
            try:
                frame = parse_frame(text)
            except FrameError as exc:
                log.warning("%s: malformed frame answered with %s: %s", self.station_id, exc.kind, exc)
                await self._send(
                    encode_error(exc.message_id, error_code(self.version, exc.kind), exc.description)
                )
                continue
            if isinstance(frame, Call):
                if not await self._within_budget(frame):
                    continue
                if self._calls.full():  # the station pipelines more than we hold: read on when there is room
                    await self._calls.put(frame)
                else:
                    self._calls.put_nowait(frame)
            else:
                future = self._pending.get(frame.message_id)
                if future is None or future.done():
                    log.warning(
                        "%s: answer to an unknown or expired call %s", self.station_id, frame.message_id
                    )
                else:
                    future.set_result(frame)

    async def _within_budget(self, call: Call) -> bool:
        """Answer a CALL with too many samples at once (False); delay one beyond the station's rate."""
        budgets = self.options.budgets
        samples = sample_count(call.action, call.payload)
        if samples > budgets.max_samples_per_message:
            self.refused_calls += 1
            self._warn_once(
                "samples",
                "%s with %d sampled values refused (at most %d a message); further ones unlogged",
                call.action,
                samples,
                budgets.max_samples_per_message,
            )
            description = f"at most {budgets.max_samples_per_message} sampled values in one message"
            await self._send(
                encode_error(call.message_id, error_code(self.version, ErrorKind.OCCURRENCE), description)
            )
            return False
        now = asyncio.get_running_loop().time()
        if self._bucket is None:
            self._bucket = TokenBucket(budgets.messages_per_s, budgets.burst, now)
        if (wait_s := self._bucket.delay(now)) > 0.0:
            self._warn_once(
                "rate",
                "more than %s messages a second (burst %d) at %s; its messages are delayed",
                budgets.messages_per_s,
                budgets.burst,
                call.action,
            )
            await asyncio.sleep(wait_s)
        return True

    def _warn_once(self, budget: str, message: str, *args: object) -> None:
        if budget not in self._warned:
            self._warned.add(budget)
            log.warning("%s: " + message, self.station_id, *args)

    def _drop_queued(self) -> None:
        """The CALLs of a closed connection that no handler has taken are dropped, not run: nobody can
        receive their answers, and a station that sent them repeats what it needs when it reconnects."""
        while not self._calls.empty():
            if self._calls.get_nowait() is not None:
                self.dropped_calls += 1
        if self.dropped_calls:
            log.info("%s: %d queued messages dropped on close", self.station_id, self.dropped_calls)

    async def _work(self) -> None:
        while (call := await self._calls.get()) is not None:
            await self._send(await self.answer(call))

    async def answer(self, call: Call) -> str:
        """The encoded CALLRESULT or CALLERROR for one of the station's CALLs."""
        try:
            handler = self._handlers.get(call.action)
            if handler is None:
                # NotSupported: an action of this version that we do not handle; NotImplemented: unknown.
                known = call.action in self._schemas.actions(self.version)
                kind = ErrorKind.NOT_SUPPORTED if known else ErrorKind.NOT_IMPLEMENTED
                raise FrameError(kind, f"{call.action} is not supported", call.message_id)
            self._check(call.action, Direction.REQUEST, call.payload, call.message_id)
            return encode_result(call.message_id, await self._handle(handler, call.payload))
        except FrameError as exc:
            return encode_error(call.message_id, error_code(self.version, exc.kind), exc.description)
        except HandlerError as exc:
            log.warning("%s: %s refused with %s: %s", self.station_id, call.action, exc.kind, exc.description)
            return encode_error(call.message_id, error_code(self.version, exc.kind), exc.description)
        except TimeoutError:
            # The station then repeats the message; the CSM's rules make the repeat harmless.
            log.error(
                "%s: %s not handled within %s s", self.station_id, call.action, self.options.handler_timeout_s
            )
            return encode_error(call.message_id, error_code(self.version, ErrorKind.INTERNAL), "timed out")
        except Exception:
            log.exception("%s: handler for %s failed", self.station_id, call.action)
            return encode_error(
                call.message_id, error_code(self.version, ErrorKind.INTERNAL), "internal error"
            )

    async def _handle(self, handler: Handler, payload: dict[str, Any]) -> dict[str, Any]:
        """Run a handler under the handler timeout; raises ``TimeoutError`` when it runs out.

        The same as ``asyncio.timeout`` (cancel the task, then tell that cancellation from any other by
        ``uncancel``), with one timer per connection instead of one per message: the timer is armed when
        none is, and when it fires it cancels the calls past their deadline and re-arms for the next.
        """
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.handler_timeout_s
        self._deadlines[task] = deadline
        if self._watch is None:
            self._watch = loop.call_at(deadline, self._expire)
        try:
            return await handler(self, payload)
        except asyncio.CancelledError:
            if task in self._expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            del self._deadlines[task]
            self._expired.discard(task)

    def _expire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._watch = None
        waiting = []
        for task, deadline in self._deadlines.items():
            if task in self._expired:
                continue
            if deadline <= now:
                self._expired.add(task)
                task.cancel()
            else:
                waiting.append(deadline)
        if waiting:
            self._watch = loop.call_at(min(waiting), self._expire)

    def _check(self, action: str, direction: Direction, payload: dict[str, Any], message_id: str) -> None:
        try:
            self._schemas.validate(self.version, action, direction, payload, message_id)
        except UnknownAction:
            raise FrameError(
                ErrorKind.NOT_IMPLEMENTED, f"{action} is not an {self.version} action", message_id
            ) from None
        except FrameError:
            if self.options.strict:
                raise
            log.warning("%s: %s %s breaks the schema; accepted (lenient)", self.station_id, action, direction)

    async def _send(self, text: str) -> None:
        async with self._send_lock:
            try:
                await self._transport.send(text)
            except Exception:  # closed under us; the reader ends the connection
                log.info("%s: could not send, connection closed", self.station_id)

    async def call(
        self, action: str, payload: dict[str, Any], timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Send a CALL and return the station's CALLRESULT payload.

        One CALL at a time per station (OCPP-J); the timeout covers the wait for our turn as well.
        Raises ``CallTimeout`` or ``CallRejected``.
        """
        timeout = self.options.call_timeout_s if timeout_s is None else timeout_s
        message_id = self._new_message_id()
        self._check(action, Direction.REQUEST, payload, message_id)
        future: asyncio.Future[CallResult | CallError] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                async with self._call_lock:
                    self._pending[message_id] = future
                    await self._send(encode_call(message_id, action, payload))
                    answer = await future
        except TimeoutError:
            raise CallTimeout(f"{self.station_id} did not answer {action} within {timeout} s") from None
        finally:
            self._pending.pop(message_id, None)
        if isinstance(answer, CallError):
            raise CallRejected(answer)
        try:
            self._check(action, Direction.RESPONSE, answer.payload, message_id)
        except FrameError as exc:
            raise CallRejected(CallError(message_id, error_code(self.version, exc.kind), str(exc))) from None
        return answer.payload

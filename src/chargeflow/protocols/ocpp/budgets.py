"""What one station's connection may cost the server: frame size, samples per message, messages per second.

Found under load (issue 13, item 6): three clients sending 1 MiB MeterValues and never reading their answers
grew the server from 177 MiB to 2.3 GB in 5 s and left 20.9 million sample rows to write after they had gone.
Each budget below bounds one factor of that product; together they bound what a connection can hold:

- ``max_frame_bytes``: a bigger websocket message is refused by the websocket layer while it arrives (close
  code 1009, "message too big", RFC 6455 7.4.1), before it is buffered whole or parsed;
- ``max_queued_frames``: frames read from the socket but not yet taken (websockets' ``max_queue``); beyond
  them the socket is no longer read, and TCP pushes back on the station;
- ``max_queued_calls``: CALLs parsed and waiting for their handler (pipelined by the station); a parsed
  message can take several times its size in memory, so this bound matters more than the one before;
- ``max_samples_per_message``: sampled values in one MeterValues, TransactionEvent or StopTransaction,
  answered with a CALLERROR ``OccurrenceConstraintViolation`` before the message is queued or validated;
- ``messages_per_s`` and ``burst``: a station's CALLs are taken at most at this rate (a token bucket); the
  excess is delayed, not refused, so a well-behaved station that catches up after an outage is only slowed,
  while a flood waits in the socket's buffers at the flooder's expense.

The token bucket here is pure (it is handed ``now``); the connection does the waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

#: the actions whose payload carries sampled values, and the key of their list of meter values
SAMPLED_ACTIONS: Final = {
    "MeterValues": "meterValue",
    "TransactionEvent": "meterValue",
    "StopTransaction": "transactionData",
}


@dataclass(frozen=True, slots=True)
class OcppBudgets:
    # 128 KiB: OCPP's largest usual messages (a NotifyReport page, a certificate chain, a StopTransaction
    # with a day of clock-aligned samples) are a few tens of KiB.
    max_frame_bytes: int = 128 * 1024
    max_queued_frames: int = 8
    max_queued_calls: int = 8
    # a 10-hour session with 20 measurands sampled every 15 min is 800 values in its StopTransaction
    max_samples_per_message: int = 2_000
    messages_per_s: float = 20.0
    burst: int = 100

    def __post_init__(self) -> None:
        if (
            self.max_frame_bytes < 1024
            or self.max_queued_frames < 1
            or self.max_queued_calls < 1
            or self.max_samples_per_message < 1
        ):
            raise ValueError("OCPP budgets must allow at least a 1 KiB frame, one queued frame, one sample")
        if self.messages_per_s <= 0 or self.burst < 1:
            raise ValueError("OCPP budgets must allow a positive message rate and a burst of at least one")


def sample_count(action: str, payload: Any) -> int:
    """The sampled values in a message's payload (0 for other actions or a payload of the wrong shape,
    which schema validation then refuses)."""
    key = SAMPLED_ACTIONS.get(action)
    if key is None or not isinstance(payload, dict):
        return 0
    meter_values = payload.get(key)
    if not isinstance(meter_values, list):
        return 0
    count = 0
    for entry in meter_values:
        if isinstance(entry, dict) and isinstance(sampled := entry.get("sampledValue"), list):
            count += len(sampled)
        else:
            count += 1
    return count


class TokenBucket:
    """``rate`` tokens a second up to ``capacity``; ``delay(now)`` takes one and says how long to wait."""

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self._rate = rate
        self._capacity = float(capacity)
        self._tokens = float(capacity)
        self._at = now

    def delay(self, now: float) -> float:
        """Take one token; 0.0 if it was there, else the seconds until it will be (the debt is kept)."""
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0.0 else -self._tokens / self._rate

"""OCPP-J RPC framing (pure): parse a websocket text frame into a CALL, CALLRESULT or CALLERROR.

A frame that cannot be read raises ``FrameError`` carrying the CALLERROR to send back. The error code
names differ between the protocol generations (1.6 spells ``FormationViolation`` and
``OccurenceConstraintViolation``; 2.0.1 and 2.1 ``FormatViolation`` and ``OccurrenceConstraintViolation``),
so codes are chosen through ``error_code(version, kind)``.

Frames are read and written with orjson (several times faster than the standard library on OCPP's small
messages). What orjson refuses but JSON readers commonly take (NaN, integers beyond 64 bits) is read
again by the standard library, so a station is answered the same either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import orjson

CALL: Final = 2
CALLRESULT: Final = 3
CALLERROR: Final = 4
# OCPP 2.0.1 part 4, 4.2.3: a CALLERROR for a message whose id cannot be read carries the id "-1".
UNKNOWN_MESSAGE_ID: Final = "-1"
MAX_MESSAGE_ID_LENGTH: Final = 36


class OcppVersion(StrEnum):
    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"
    V21 = "ocpp2.1"

    @property
    def is_v2(self) -> bool:
        return self is not OcppVersion.V16


class ErrorKind(StrEnum):
    FORMAT = "format"
    OCCURRENCE = "occurrence"
    PROPERTY = "property"
    PROTOCOL = "protocol"
    TYPE = "type"
    NOT_IMPLEMENTED = "not_implemented"
    NOT_SUPPORTED = "not_supported"
    INTERNAL = "internal"
    SECURITY = "security"
    MESSAGE_TYPE = "message_type"
    GENERIC = "generic"


_CODES_V16: Final = {
    ErrorKind.FORMAT: "FormationViolation",
    ErrorKind.OCCURRENCE: "OccurenceConstraintViolation",
    ErrorKind.PROPERTY: "PropertyConstraintViolation",
    ErrorKind.PROTOCOL: "ProtocolError",
    ErrorKind.TYPE: "TypeConstraintViolation",
    ErrorKind.NOT_IMPLEMENTED: "NotImplemented",
    ErrorKind.NOT_SUPPORTED: "NotSupported",
    ErrorKind.INTERNAL: "InternalError",
    ErrorKind.SECURITY: "SecurityError",
    ErrorKind.MESSAGE_TYPE: "ProtocolError",
    ErrorKind.GENERIC: "GenericError",
}
_CODES_V2: Final = {
    **_CODES_V16,
    ErrorKind.FORMAT: "FormatViolation",
    ErrorKind.OCCURRENCE: "OccurrenceConstraintViolation",
    ErrorKind.MESSAGE_TYPE: "MessageTypeNotSupported",
}


def error_code(version: OcppVersion, kind: ErrorKind) -> str:
    return (_CODES_V2 if version.is_v2 else _CODES_V16)[kind]


@dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    message_id: str
    code: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)


Frame = Call | CallResult | CallError


class FrameError(Exception):
    """A frame that cannot be handled; ``message_id`` is the id to answer under."""

    def __init__(self, kind: ErrorKind, description: str, message_id: str = UNKNOWN_MESSAGE_ID) -> None:
        super().__init__(description)
        self.kind = kind
        self.description = description
        self.message_id = message_id


def _message_id(frame: list[Any]) -> str:
    if len(frame) < 2 or not isinstance(frame[1], str) or not 0 < len(frame[1]) <= MAX_MESSAGE_ID_LENGTH:
        raise FrameError(ErrorKind.PROTOCOL, "MessageId is missing or not a string of 1 to 36 characters")
    if not _is_text(frame[1]):
        raise FrameError(ErrorKind.PROTOCOL, "MessageId holds a lone surrogate, which is not text")
    return frame[1]


def _is_text(value: str) -> bool:
    """Whether ``value`` can be sent back as UTF-8: JSON's ``\\ud800`` escapes can make a lone surrogate."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _all_text(frame: object) -> bool:
    """Whether every string of a frame read by the lenient parser is text (one pass over its JSON)."""
    try:
        written = json.dumps(frame, ensure_ascii=False)
    except RecursionError:
        return False
    return _is_text(written)


def parse_frame(text: str | bytes) -> Frame:
    """Parse one websocket message; raises ``FrameError`` with the CALLERROR kind to answer."""
    lenient = False
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        # orjson refuses nesting deeper than 1,024 and lone surrogates; the standard library's recursive
        # parser then runs out of stack on deep nesting, and its lone surrogates cannot be sent back.
        try:
            frame = json.loads(text)
        except RecursionError:
            raise FrameError(ErrorKind.FORMAT, "message nests too deep") from None
        except (ValueError, UnicodeDecodeError):
            raise FrameError(ErrorKind.FORMAT, "message is not valid JSON") from None
        lenient = True
    if not isinstance(frame, list) or not frame:
        raise FrameError(ErrorKind.FORMAT, "message is not a JSON array")
    type_id = frame[0]
    message_id = _message_id(frame)
    if lenient and not _all_text(frame):
        raise FrameError(
            ErrorKind.FORMAT, "a string holds a lone surrogate, or the message nests too deep", message_id
        )
    if type_id == CALL:
        if len(frame) != 4:
            raise FrameError(ErrorKind.FORMAT, "a CALL has 4 elements", message_id)
        action, payload = frame[2], frame[3]
        if not isinstance(action, str) or not action:
            raise FrameError(ErrorKind.FORMAT, "the action is not a string", message_id)
        if not isinstance(payload, dict):
            raise FrameError(ErrorKind.FORMAT, "the payload is not a JSON object", message_id)
        return Call(message_id, action, payload)
    if type_id == CALLRESULT:
        if len(frame) != 3 or not isinstance(frame[2], dict):
            raise FrameError(ErrorKind.FORMAT, "a CALLRESULT has 3 elements, the last an object", message_id)
        return CallResult(message_id, frame[2])
    if type_id == CALLERROR:
        if len(frame) != 5:
            raise FrameError(ErrorKind.FORMAT, "a CALLERROR has 5 elements", message_id)
        details = frame[4] if isinstance(frame[4], dict) else {}
        return CallError(message_id, str(frame[2]), str(frame[3]), details)
    raise FrameError(ErrorKind.MESSAGE_TYPE, f"MessageTypeId {type_id!r} is not 2, 3 or 4", message_id)


def _dumps(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # a value orjson does not write (an integer beyond 64 bits, a NaN read back)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode_call(message_id: str, action: str, payload: dict[str, Any]) -> str:
    return _dumps([CALL, message_id, action, payload])


def encode_result(message_id: str, payload: dict[str, Any]) -> str:
    return _dumps([CALLRESULT, message_id, payload])


def encode_error(message_id: str, code: str, description: str, details: dict[str, Any] | None = None) -> str:
    return _dumps([CALLERROR, message_id, code, description[:255], details or {}])

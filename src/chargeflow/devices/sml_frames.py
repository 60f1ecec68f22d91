"""SML (Smart Message Language, BSI TR-03109-1 / FNN EDL) as the German meters' IR interface sends it (pure):
the frames found in a byte stream between their escape sequences, their checksums, and the few values a
site needs from them (OBIS 1.8.0 and 2.8.0 energy, 16.7.0 power, per phase 36.7.0, 56.7.0, 76.7.0 power
and 31.7.0, 51.7.0, 71.7.0 current).

Written from the specification rather than on pysml: pysml cannot read frames whose checksums are CRC-16/
Kermit (SmlLib issue #8: a Holley meter), and it is untyped. SML is a TLV format: one type-length byte
(more-flag, 3 type bits, 4 length bits, continued in the next bytes while the flag is set) and the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

ESCAPE = b"\x1b\x1b\x1b\x1b"
START = ESCAPE + b"\x01\x01\x01\x01"
MAX_FRAME_BYTES = 16_384  # the largest frames we know (with signatures) are under 1 kB

_GET_LIST_RESPONSE = 0x0701
#: (C, D, E) of the OBIS codes read, A = 1 (electricity)
_IMPORT_WH, _EXPORT_WH, _POWER_W = (1, 8, 0), (2, 8, 0), (16, 7, 0)
_PHASE_POWER_W = ((36, 7, 0), (56, 7, 0), (76, 7, 0))
_PHASE_CURRENT_A = ((31, 7, 0), (51, 7, 0), (71, 7, 0))
_UNIT_W, _UNIT_WH, _UNIT_A = 27, 30, 33


class SmlError(ValueError):
    """A frame or message that cannot be read, and why."""


def crc16_x25(data: bytes) -> int:
    return _crc16(data, 0xFFFF, 0xFFFF)


def crc16_kermit(data: bytes) -> int:
    return _crc16(data, 0x0000, 0x0000)


def _crc16(data: bytes, start: int, xor_out: int) -> int:
    crc = start
    for octet in data:
        crc ^= octet
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ xor_out


def _checksum_ok(data: bytes, stored: int) -> bool:
    """The stored checksum is CRC-16/X.25 (the standard's, sent low byte first) or, on some meters,
    CRC-16/Kermit (sent high byte first): either one is taken."""
    x25 = crc16_x25(data)
    return stored in (((x25 & 0xFF) << 8) | (x25 >> 8), crc16_kermit(data))


@dataclass(frozen=True, slots=True)
class ObisValue:
    obis: tuple[int, int, int, int, int, int]
    value: int | float | bytes | bool | None
    unit: int | None

    @property
    def code(self) -> str:
        a, b, c, d, e, f = self.obis
        return f"{a}-{b}:{c}.{d}.{e}*{f}"


@dataclass(frozen=True, slots=True)
class SmlValues:
    """What a frame says: every list entry, and the ones the site reads (None where the meter omits them)."""

    entries: tuple[ObisValue, ...] = field(default=())
    import_wh: float | None = None
    export_wh: float | None = None
    power_w: float | None = None  # positive: import
    phase_power_w: tuple[float, float, float] | None = None
    phase_current_a: tuple[float, float, float] | None = None


# --- the transport: frames between escape sequences -------------------------------------------------


@dataclass
class SmlStream:
    """Bytes in, frame payloads (unescaped, without the escape sequences) or errors out."""

    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> Iterator[bytes | SmlError]:
        self.buffer += data
        while True:
            start = self.buffer.find(START)
            if start < 0:
                # keep a tail that may be the beginning of a start sequence
                del self.buffer[: max(0, len(self.buffer) - len(START) + 1)]
                return
            del self.buffer[:start]
            found = _frame_at(self.buffer)
            if found is None:
                if len(self.buffer) > MAX_FRAME_BYTES:
                    del self.buffer[:1]
                    yield SmlError(f"no end of frame within {MAX_FRAME_BYTES} bytes")
                    continue
                return
            length, frame = found
            del self.buffer[:length]
            yield frame


def _frame_at(buffer: bytearray) -> tuple[int, bytes | SmlError] | None:
    """The frame that starts the buffer: (bytes used, its payload or why not), or None to wait for more.

    Escape sequences stand on 4-byte boundaries (the payload is padded): ESC ESC is four 1b bytes of data,
    ESC 1a pp cc cc ends the frame (pp fill bytes, cc cc the checksum over all before it), ESC START a new
    frame that cuts this one."""
    next_start = buffer.find(START, len(START))
    unaligned = next_start if next_start > 0 and next_start % 4 else -1
    payload = bytearray()
    position = len(START)
    while position + 4 <= len(buffer):
        if 0 <= unaligned < position + 4:
            return unaligned, SmlError(f"a cut frame: a new frame starts after {unaligned} bytes")
        word = bytes(buffer[position : position + 4])
        if word != ESCAPE:
            payload += word
            position += 4
            continue
        if position + 8 > len(buffer):
            return None
        following = bytes(buffer[position + 4 : position + 8])
        if following == ESCAPE:
            payload += ESCAPE
            position += 8
        elif following == START[4:]:
            return position, SmlError(f"a cut frame: a new frame starts after {position} bytes")
        elif following[0] == 0x1A:
            end = position + 8
            fill, stored = following[1], int.from_bytes(following[2:4], "big")
            if not _checksum_ok(bytes(buffer[: end - 2]), stored):
                return end, SmlError(f"a frame of {end} bytes with a wrong checksum")
            # 0-3 fill bytes by the standard; DZG meters send a whole word of them (SmlLib's Frame1)
            if fill > 4 or fill > len(payload) or any(payload[len(payload) - fill :]):
                return end, SmlError(f"a frame with {fill} fill bytes that are not all zero")
            return end, bytes(payload[: len(payload) - fill])
        else:
            return position + 8, SmlError(f"an unknown escape sequence {following.hex()}")
    if unaligned >= 0:
        return unaligned, SmlError(f"a cut frame: a new frame starts after {unaligned} bytes")
    return None


# --- the messages: TLV ----------------------------------------------------------------------------

Node = int | bool | bytes | None | list["Node"]


class _Reader:
    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data = data
        self.position = position

    def byte(self) -> int:
        if self.position >= len(self.data):
            raise SmlError(f"a message cut after {len(self.data)} bytes")
        value = self.data[self.position]
        self.position += 1
        return value

    def node(self, depth: int = 0) -> Node:
        if depth > 16:
            raise SmlError("lists nested too deep")
        first = self.byte()
        kind, length, more, tl_bytes = (first >> 4) & 0x7, first & 0xF, first & 0x80, 1
        while more:
            octet = self.byte()
            if octet & 0x70:
                raise SmlError(f"a type-length byte {octet:#04x} continues with a type")
            length, more, tl_bytes = (length << 4) | (octet & 0xF), octet & 0x80, tl_bytes + 1
        if kind == 7:
            return [self.node(depth + 1) for _ in range(length)]
        if first == 0x00:
            return None  # end of message
        size = length - tl_bytes
        if size < 0 or self.position + size > len(self.data):
            raise SmlError(f"a value of {size} bytes past the end of the message")
        raw = self.data[self.position : self.position + size]
        self.position += size
        if kind == 0:
            return raw if size else None  # an empty octet string: an optional value left out
        if kind == 4 and size == 1:
            return bool(raw[0])
        if kind == 5 and size:
            return int.from_bytes(raw, "big", signed=True)
        if kind == 6 and size:
            return int.from_bytes(raw, "big", signed=False)
        raise SmlError(f"an unknown type-length byte {first:#04x}")


def parse_messages(payload: bytes, check_crc: bool = True) -> SmlValues:
    """The values of the GetListResponse messages in a frame's payload (or a run of messages without the
    transport around them), each message's own checksum checked unless ``check_crc`` is off."""
    reader, entries = _Reader(payload), list[ObisValue]()
    while reader.position < len(payload):
        if payload[reader.position] == 0x00:  # fill
            reader.position += 1
            continue
        start = reader.position
        message = reader.node()
        if not isinstance(message, list) or len(message) != 6:
            raise SmlError(f"a message at byte {start} is not a list of six")
        crc = message[4]
        if not isinstance(crc, int) or message[5] is not None:
            raise SmlError(f"a message at byte {start} without its checksum and end")
        crc_tl = 1 + _int_size(payload, reader.position - 2)
        if check_crc and not _checksum_ok(payload[start : reader.position - 1 - crc_tl], crc):
            raise SmlError(f"a message at byte {start} with a wrong checksum")
        body = message[3]
        if isinstance(body, list) and len(body) == 2 and body[0] == _GET_LIST_RESPONSE:
            entries.extend(_entries(body[1]))
    return _values(tuple(entries))


def _int_size(payload: bytes, last: int) -> int:
    """The size of the checksum's value, whose last byte is at ``last`` (walking back to its TL byte)."""
    for size in (2, 1, 3):
        tl = last - size
        if tl >= 0 and payload[tl] == 0x60 | (size + 1):
            return size
    raise SmlError("cannot find a message's checksum")


def _entries(response: Node) -> Iterator[ObisValue]:
    if not isinstance(response, list) or len(response) < 5 or not isinstance(response[4], list):
        raise SmlError("a GetListResponse without its value list")
    for entry in response[4]:
        if not isinstance(entry, list) or len(entry) != 7:
            raise SmlError("a list entry that is not a list of seven")
        name, _status, _time, unit, scaler, raw, _signature = entry
        if not isinstance(name, bytes) or len(name) != 6:
            raise SmlError(f"an object name that is not an OBIS code: {name!r}")
        a, b, c, d, e, f = name
        value: int | float | bytes | bool | None = None  # a time or a structure: nothing the site reads
        if isinstance(raw, int) and not isinstance(raw, bool) and isinstance(scaler, int) and scaler:
            value = raw / 10**-scaler if scaler < 0 else raw * 10.0**scaler
        elif not isinstance(raw, list):
            value = raw
        yield ObisValue((a, b, c, d, e, f), value, unit if isinstance(unit, int) else None)


def _values(entries: tuple[ObisValue, ...]) -> SmlValues:
    def find(cde: tuple[int, int, int], unit: int) -> float | None:
        for entry in entries:
            value = entry.value
            if entry.obis[0] == 1 and entry.obis[2:5] == cde and entry.unit in (unit, None):  # noqa: SIM102
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return float(value)
        return None

    phases = [find(cde, _UNIT_W) for cde in _PHASE_POWER_W]
    currents = [find(cde, _UNIT_A) for cde in _PHASE_CURRENT_A]
    return SmlValues(
        entries,
        import_wh=find(_IMPORT_WH, _UNIT_WH),
        export_wh=find(_EXPORT_WH, _UNIT_WH),
        power_w=find(_POWER_W, _UNIT_W),
        phase_power_w=(phases[0], phases[1], phases[2]) if None not in phases else None,  # type: ignore[arg-type]
        phase_current_a=(currents[0], currents[1], currents[2]) if None not in currents else None,  # type: ignore[arg-type]
    )

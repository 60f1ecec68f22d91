"""Small SML frames of the tests' own (TLV, message and transport checksums), to cut and corrupt."""

from __future__ import annotations

from chargeflow.devices.sml_frames import ESCAPE, START, crc16_x25


def octets(value: bytes) -> bytes:
    return bytes([len(value) + 1]) + value


def unsigned(value: int, size: int) -> bytes:
    return bytes([0x60 | (size + 1)]) + value.to_bytes(size, "big")


def signed(value: int, size: int) -> bytes:
    return bytes([0x50 | (size + 1)]) + value.to_bytes(size, "big", signed=True)


def items(*parts: bytes) -> bytes:
    return bytes([0x70 | len(parts)]) + b"".join(parts)


def entry(obis: str, unit: int, scaler: int, value: bytes) -> bytes:
    """``obis`` as 1-0:16.7.0*255."""
    a, rest = obis.split("-")
    b, rest = rest.split(":")
    cde, f = rest.split("*")
    code = bytes(int(x) for x in (a, b, *cde.split("."), f))
    return items(octets(code), b"\x01", b"\x01", unsigned(unit, 1), signed(scaler, 1), value, b"\x01")


def _checksum(data: bytes) -> bytes:
    return crc16_x25(data).to_bytes(2, "little")


def get_list_response(*entries: bytes, server: bytes = b"\x0a\x01TST\x00\x00\x00\x00\x01") -> bytes:
    body = items(
        unsigned(0x0701, 2),
        items(b"\x01", octets(server), b"\x01", b"\x01", items(*entries), b"\x01", b"\x01"),
    )
    head = b"\x76" + octets(b"\x01") + unsigned(0, 1) + unsigned(0, 1) + body
    return head + b"\x63" + _checksum(head) + b"\x00"


def transport(payload: bytes) -> bytes:
    fill = -len(payload) % 4
    padded = payload + bytes(fill)
    words = [padded[i : i + 4] for i in range(0, len(padded), 4)]
    escaped = b"".join(ESCAPE * 2 if w == ESCAPE else w for w in words)
    frame = START + escaped + ESCAPE + bytes([0x1A, fill])
    return frame + _checksum(frame)


def meter_frame(power_w: int, import_wh: int = 1_000_000, export_wh: int = 0) -> bytes:
    """A frame as an unlocked meter sends it: energy in 0.1 Wh, power in W."""
    return transport(
        get_list_response(
            entry("1-0:1.8.0*255", 30, -1, unsigned(import_wh * 10, 8)),
            entry("1-0:2.8.0*255", 30, -1, unsigned(export_wh * 10, 8)),
            entry("1-0:16.7.0*255", 27, 0, signed(power_w, 4)),
        )
    )

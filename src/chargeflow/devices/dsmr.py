"""A meter with a DSMR P1 port (the Dutch DSMR 2.2 to 5, the Belgian Fluvius e-MUCS and the other variants
dsmr-parser knows), on a serial line or through a P1 dongle or ser2net over TCP. dsmr-parser reads each
telegram and checks its CRC (DSMR 4 and later); this module cuts the stream into telegrams (so that a cut
one is named rather than skipped), picks the specification, and turns the values into a reading: power =
delivered − returned (1.7.0 − 2.7.0, kW → W, positive import), and the currents per phase (31.7.0 …, else
the phases' power 21.7.0 − 22.7.0 … over their voltage)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from dsmr_parser import telegram_specifications as specs
from dsmr_parser.exceptions import ParseError
from dsmr_parser.parsers import TelegramParser

from chargeflow.devices.stream import StreamMeter
from chargeflow.units import NOMINAL_VOLTAGE_V

#: the site file's ``dsmr_version`` → dsmr-parser's specification (the encrypted ones are not offered)
SPECIFICATIONS: dict[str, dict[str, Any]] = {
    "5": specs.V5,
    "4": specs.V4,
    "2.2": specs.V2_2,
    "3": specs.V3,
    "5B": specs.BELGIUM_FLUVIUS,
    "ISKRA_IE": specs.ISKRA_IE,
    "5EONHU": specs.EON_HUNGARY,
    "5S": specs.SWEDEN,
    "Q3D": specs.Q3D,
    "5L": specs.LUXEMBOURG_SMARTY,
}
MAX_TELEGRAM_CHARS = 16_384
#: DSMR 2.2 to 4 send 7E1, DSMR 5 8N1: the line is read as 8N1 and the 8th bit (7E1's parity) dropped, which
#: reads both (a 7E1 character is as long as an 8N1 one)
_SEVEN_BITS = bytes(i & 0x7F for i in range(256))
_END = re.compile(r"!([0-9A-Fa-f]{0,4})\x00?\r\n")


class DsmrError(ValueError):
    pass


class TelegramStream:
    """Text in, telegrams (``/`` … ``!CRC``) or the reason one was lost out."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, text: str) -> Iterator[str | DsmrError]:
        self._buffer += text
        while True:
            start = self._buffer.find("/")
            if start < 0:
                self._buffer = ""
                return
            self._buffer = self._buffer[start:]
            end = _END.search(self._buffer)
            limit = end.start() if end else len(self._buffer)
            again = self._buffer.find("/", 1, limit)
            if again >= 0:
                self._buffer = self._buffer[again:]
                yield DsmrError(f"a cut telegram: a new one starts after {again} characters")
                continue
            if end is None:
                if len(self._buffer) > MAX_TELEGRAM_CHARS:
                    self._buffer = self._buffer[1:]
                    yield DsmrError(f"no end of telegram within {MAX_TELEGRAM_CHARS} characters")
                    continue
                return
            telegram, self._buffer = self._buffer[: end.end()], self._buffer[end.end() :]
            yield telegram


def detect(telegram: str) -> str:
    """The specification that reads most of the telegram (in the order of SPECIFICATIONS on a tie), its
    CRC checked first where it has one."""
    check_crc(telegram)
    best, count = "", -1
    for version, spec in SPECIFICATIONS.items():
        try:
            found = len(list(TelegramParser(spec).parse(telegram)))
        except (ParseError, ValueError, TypeError, IndexError):
            continue
        if found > count:
            best, count = version, found
    if count <= 0:
        raise DsmrError("no DSMR specification reads this telegram")
    return best


def check_crc(telegram: str) -> None:
    """The CRC of a telegram that has one (DSMR 4 and later, and Iskra's Irish ones whose specification in
    dsmr-parser does not check it), or DsmrError."""
    end = _END.search(telegram)
    if end is not None and end.group(1):
        try:
            TelegramParser.validate_checksum(telegram)
        except ParseError as err:
            raise DsmrError(str(err)) from None


def parse(telegram: str, version: str) -> tuple[float, tuple[float, float, float] | None]:
    """The power in W (delivered − returned, positive import) and the currents per phase in A."""
    check_crc(telegram)
    try:
        values = TelegramParser(SPECIFICATIONS[version]).parse(telegram)
    except (ParseError, ValueError, TypeError, IndexError) as err:
        raise DsmrError(f"{type(err).__name__}: {err}") from None

    def watts(name: str) -> float | None:
        """A power in W, whether the telegram gives kW (DSMR) or W (Q3D)."""
        item = getattr(values, name, None)
        value, unit = getattr(item, "value", None), getattr(item, "unit", None)
        if not isinstance(value, Decimal | int) or unit not in ("kW", "W"):
            return None
        return float(value * 1000 if unit == "kW" else value)  # Decimal: 02.027 kW is 2027 W exactly

    def plain(name: str) -> float | None:
        value = getattr(getattr(values, name, None), "value", None)
        return float(value) if isinstance(value, Decimal | int | float) else None

    phases = [
        tuple(watts(f"INSTANTANEOUS_ACTIVE_POWER_L{n}_{way}") for way in ("POSITIVE", "NEGATIVE"))
        for n in (1, 2, 3)
    ]
    phase_w = [None if p is None else p - (n or 0.0) for p, n in phases]
    delivered, returned = watts("CURRENT_ELECTRICITY_USAGE"), watts("CURRENT_ELECTRICITY_DELIVERY")
    if delivered is not None:
        power_w = delivered - (returned or 0.0)
    elif None not in phase_w:
        power_w = sum(p or 0.0 for p in phase_w)
    else:
        raise DsmrError("a telegram without the power delivered (1-0:1.7.0)")
    currents = [plain(f"INSTANTANEOUS_CURRENT_L{n}") for n in (1, 2, 3)]
    if None not in currents:
        a, b, c = (c or 0.0 for c in currents)
        return power_w, (a, b, c)
    if None not in phase_w:
        volts = [plain(f"INSTANTANEOUS_VOLTAGE_L{n}") or NOMINAL_VOLTAGE_V for n in (1, 2, 3)]
        a, b, c = (abs(p or 0.0) / v for p, v in zip(phase_w, volts, strict=True))
        return power_w, (a, b, c)
    return power_w, None


class DsmrMeter(StreamMeter):
    _stream: TelegramStream
    version: str | None = None

    @property
    def default_baudrate(self) -> int:  # type: ignore[override]
        """115200 (DSMR 4 and 5) unless the site file names an older version (9600)."""
        return 9600 if self.config.dsmr_version in ("2.2", "3") else 115200

    def restart(self) -> None:
        self._stream = TelegramStream()

    def feed(self, data: bytes) -> None:
        for telegram in self._stream.feed(data.translate(_SEVEN_BITS).decode("ascii")):
            try:
                if isinstance(telegram, DsmrError):
                    raise telegram
                if self.version is None:
                    configured = self.config.dsmr_version
                    self.version = detect(telegram) if configured == "auto" else configured
                power_w, currents = parse(telegram, self.version)
            except (DsmrError, ParseError) as err:
                self.failed(f"{self.source}: a broken P1 telegram: {err}; the last reading is kept")
                continue
            self.publish(power_w, currents)

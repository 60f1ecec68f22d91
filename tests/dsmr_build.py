"""A DSMR 5 telegram of the tests' own, with its CRC."""

from __future__ import annotations

from dsmr_parser.parsers import TelegramParser


def telegram(
    delivered_kw: float, returned_kw: float = 0.0, currents_a: tuple[int, int, int] = (1, 2, 3)
) -> str:
    body = (
        "/ISk5\\2MT382-1000\r\n\r\n"
        "1-3:0.2.8(50)\r\n"
        "0-0:1.0.0(261207120000W)\r\n"
        "0-0:96.1.1(4B384547303034303436333935353037)\r\n"
        "1-0:1.8.1(000123.456*kWh)\r\n"
        "1-0:1.8.2(000234.567*kWh)\r\n"
        "1-0:2.8.1(000001.000*kWh)\r\n"
        "1-0:2.8.2(000002.000*kWh)\r\n"
        "0-0:96.14.0(0002)\r\n"
        f"1-0:1.7.0({delivered_kw:06.3f}*kW)\r\n"
        f"1-0:2.7.0({returned_kw:06.3f}*kW)\r\n"
        f"1-0:31.7.0({currents_a[0]:03d}*A)\r\n"
        f"1-0:51.7.0({currents_a[1]:03d}*A)\r\n"
        f"1-0:71.7.0({currents_a[2]:03d}*A)\r\n"
        "!"
    )
    return f"{body}{TelegramParser.crc16(body):04X}\r\n"

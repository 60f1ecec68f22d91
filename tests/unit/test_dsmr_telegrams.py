"""The DSMR P1 adapter's reading of dsmr_parser's reference telegrams (read from the shared folder at test
time), the detection of their specification, and broken telegrams of our own."""

from __future__ import annotations

import pytest

from chargeflow.clock import SystemClock
from chargeflow.devices.dsmr import DsmrError, DsmrMeter, TelegramStream, detect, parse
from chargeflow.site.config import MeterConfig
from tests.dsmr_build import telegram
from tests.meter_data import MISSING_DSMR, dsmr_telegrams

TELEGRAMS = dsmr_telegrams()

# telegram: (the specification detected, power W, currents A)
EXPECTED: dict[str, tuple[str, float, tuple[float, float, float] | None]] = {
    "TELEGRAM_V2_2": ("2.2", 1010.0, None),
    "TELEGRAM_V3": ("2.2", 1190.0, None),  # 2.2 and 3 are one specification in dsmr-parser
    "TELEGRAM_V4_2": ("4", 2027.0, (0.0, 6.0, 2.0)),
    "TELEGRAM_V5": ("5", 244.0, (0.48, 0.44, 0.86)),
    "TELEGRAM_V5_TWO_MBUS": ("5", 111.0, (0.0, 0.0, 1.0)),
    "TELEGRAM_FLUVIUS_V171": ("5B", 0.0, (0.0, 0.0, 0.0)),
    "TELEGRAM_FLUVIUS_V171_ALT": ("5B", 338.0, (0.27, 0.88, 0.52)),
    # Q3D sends per-phase power but no currents: those at the nominal 230 V
    "TELEGRAM_ESY5Q3DB1024_V304": ("Q3D", 2124.86, (747.85 / 230, 737.28 / 230, 639.73 / 230)),
    "TELEGRAM_ESY5Q3DA1004_V304": ("Q3D", 1688.21, (557.29 / 230, 521.62 / 230, 609.30 / 230)),
    "TELEGRAM_SAGEMCOM_T210_D_R": ("5EONHU", 286.0, None),
    "TELEGRAM_ISKRA_IE": ("ISKRA_IE", -100.0, (0.0, 0.0, 0.0)),
    "TELEGRAM_V5_EON_HU": ("5EONHU", -2601.0, (3.0, 4.0, 3.0)),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_reference_telegram_is_detected_and_read(name: str) -> None:
    if name not in TELEGRAMS:
        pytest.skip(MISSING_DSMR)
    version, power_w, currents = EXPECTED[name]
    assert detect(TELEGRAMS[name]) == version
    read_power, read_currents = parse(TELEGRAMS[name], version)
    assert read_power == pytest.approx(power_w)
    assert read_currents == pytest.approx(currents, abs=0.01)


def test_the_reference_telegrams_come_one_by_one_from_a_stream_of_any_chunking() -> None:
    if not TELEGRAMS:
        pytest.skip(MISSING_DSMR)
    names = sorted(EXPECTED)
    text = "".join(TELEGRAMS[n] for n in names)
    stream, out = TelegramStream(), list[str | DsmrError]()
    for i in range(0, len(text), 37):
        out.extend(stream.feed(text[i : i + 37]))
    assert len(out) == len(names)
    for name, read in zip(names, out, strict=True):
        # whole, up to its CRC line (Q3D meters send two more lines after it, which are dropped)
        assert isinstance(read, str)
        assert TELEGRAMS[name].startswith(read), name


def test_a_wrong_crc_is_refused() -> None:
    good = telegram(1.5)
    bad = good.replace("1-0:1.7.0(01.500", "1-0:1.7.0(09.500")
    assert parse(good, "5")[0] == 1500.0
    with pytest.raises(DsmrError, match="CRC"):
        parse(bad, "5")
    with pytest.raises(DsmrError, match="CRC"):
        detect(bad)


def test_a_cut_telegram_is_named_and_the_next_one_read() -> None:
    whole = telegram(0.2, 3.0)
    out = list(TelegramStream().feed("garbage\r\n" + whole[:150] + whole))
    assert isinstance(out[0], DsmrError)
    assert "cut telegram" in str(out[0])
    assert out[1] == whole
    power_w, currents = parse(whole, detect(whole))
    assert power_w == pytest.approx(-2800.0)
    assert currents == (1.0, 2.0, 3.0)


def test_a_telegram_without_its_crc_is_refused_where_the_version_has_one() -> None:
    cut = telegram(1.0).split("!")[0] + "!\r\n"
    with pytest.raises(DsmrError):
        parse(cut, "5")


def test_a_7e1_line_read_as_8n1_gives_the_same_telegram() -> None:
    """DSMR 2.2 to 4 send 7 data bits and even parity: read as 8N1, the parity is each byte's 8th bit."""
    text = telegram(2.25, currents_a=(9, 8, 7))
    line = bytes(c | 0x80 if bin(c).count("1") % 2 else c for c in text.encode())
    assert line != text.encode()
    config = MeterConfig(id="grid", role="grid", adapter="dsmr", serial_port="/dev/ttyUSB0")
    meter = DsmrMeter(config, SystemClock())
    meter.restart()
    meter.feed(line)
    assert meter.error is None
    assert meter.latest is not None
    assert (meter.latest.power_w, meter.latest.current_a) == (2250.0, (9.0, 8.0, 7.0))

"""A meter that sends SML frames (a German smart meter's IR interface, through an IR head on a serial
port or a TCP bridge): its power from OBIS 16.7.0, or from the energy registers 1.8.0 and 2.8.0 where the
meter gives no power (one not unlocked with its PIN), and the per-phase currents where it sends them."""

from __future__ import annotations

from datetime import datetime

from chargeflow.devices.sml_frames import SmlError, SmlStream, SmlValues, parse_messages
from chargeflow.devices.stream import StreamMeter
from chargeflow.units import NOMINAL_VOLTAGE_V

#: the shortest time over which a power is read from the energy registers: a register of 1 Wh read every
#: second would give 0 or 3.6 kW
ENERGY_WINDOW_S = 10.0


class SmlMeter(StreamMeter):
    default_baudrate = 9600

    _stream: SmlStream
    _energy: tuple[datetime, float] | None = None  # (time, import − export Wh) at the window's start
    energy_window_s = ENERGY_WINDOW_S

    def restart(self) -> None:
        self._stream = SmlStream()

    def feed(self, data: bytes) -> None:
        for frame in self._stream.feed(data):
            if isinstance(frame, SmlError):
                self.failed(f"{self.source}: a broken SML frame: {frame}; the last reading is kept")
                continue
            try:
                values = parse_messages(frame)
            except SmlError as err:
                self.failed(f"{self.source}: an unreadable SML frame: {err}; the last reading is kept")
                continue
            self._take(values)

    def _take(self, values: SmlValues) -> None:
        power_w = values.power_w
        if values.import_wh is not None:
            now, net_wh = self._clock.now(), values.import_wh - (values.export_wh or 0.0)
            start = self._energy
            if start is None or power_w is not None:
                self._energy = (now, net_wh)
            elif (seconds := (now - start[0]).total_seconds()) >= self.energy_window_s:
                power_w = (net_wh - start[1]) * 3600.0 / seconds
                self._energy = (now, net_wh)
        if power_w is None:
            if values.import_wh is None:
                self.failed(f"{self.source}: an SML frame without power (16.7.0) or energy (1.8.0)")
            return  # energy only: the power comes when the window is full
        self.publish(power_w, _currents(values))


def _currents(values: SmlValues) -> tuple[float, float, float] | None:
    """The currents per phase: measured where the meter sends them, else from the phases' power at the
    nominal voltage (their magnitude: a fuse carries either way)."""
    if values.phase_current_a is not None:
        return values.phase_current_a
    if values.phase_power_w is not None:
        a, b, c = (abs(p) / NOMINAL_VOLTAGE_V for p in values.phase_power_w)
        return (a, b, c)
    return None

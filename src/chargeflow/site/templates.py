"""Devices by template name (pure data): a site file names what it has — ``{id: grid, role: grid,
template: shelly-pro-3em, device: shellypro3em-c8f09e8a1b2c}`` — and the template fills in the adapter and
where each value is. ``docs/devices.md`` lists them from here (``chargeflow devices templates
--markdown``), so that the list cannot drift from what the code knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    summary: str
    #: the meter's settings; ``{param}`` in a string is replaced by the site file's value of that param
    settings: Mapping[str, Any]
    #: what the site file gives beside the template, and what each is
    params: Mapping[str, str] = field(default_factory=dict)


_SHELLY_STATUS = (
    "a Shelly Gen2+ device with MQTT and its *generic status update* on: it publishes its full status on "
    "`<device>/status/<component>`"
)

TEMPLATES: tuple[Template, ...] = (
    Template(
        "tasmota",
        "a Tasmota energy meter or plug over MQTT: its `tele/<device>/SENSOR` message, `ENERGY.Power` in W "
        "(one phase or the total)",
        {"adapter": "mqtt", "topic": "tele/{device}/SENSOR", "power": "$.ENERGY.Power", "unit": "W"},
        {"device": "its MQTT topic name (Tasmota's Topic setting)"},
    ),
    Template(
        "tasmota-http",
        "a Tasmota energy meter or plug polled over HTTP (`Status 8`)",
        {
            "adapter": "http",
            "url": "http://{host}/cm?cmnd=Status%208",
            "power": "$.StatusSNS.ENERGY.Power",
            "unit": "W",
        },
        {"host": "its address"},
    ),
    Template(
        "shelly-pro-3em",
        f"a Shelly Pro 3EM (three phases: the total power and each phase's current); {_SHELLY_STATUS}",
        {
            "adapter": "mqtt",
            "topic": "{device}/status/em:0",
            "power": "$.total_act_power",
            "currents": ["$.a_current", "$.b_current", "$.c_current"],
            "unit": "W",
        },
        {"device": "its MQTT prefix, e.g. shellypro3em-c8f09e8a1b2c"},
    ),
    Template(
        "shelly-pro-3em-http",
        "a Shelly Pro 3EM polled over HTTP (`EM.GetStatus`): the total power and each phase's current",
        {
            "adapter": "http",
            "url": "http://{host}/rpc/EM.GetStatus?id=0",
            "power": "$.total_act_power",
            "currents": ["$.a_current", "$.b_current", "$.c_current"],
            "unit": "W",
        },
        {"host": "its address"},
    ),
    Template(
        "shelly-pro-em",
        f"a Shelly Pro EM or EM Gen3 (one phase, its first channel); {_SHELLY_STATUS}",
        {"adapter": "mqtt", "topic": "{device}/status/em1:0", "power": "$.act_power", "unit": "W"},
        {"device": "its MQTT prefix, e.g. shellyproem50-08f9e0e5d1a4"},
    ),
    Template(
        "shelly-plus-pm",
        "a Shelly Plus / Pro 1PM, Plus Plug S or another metering switch (its first switch); "
        + _SHELLY_STATUS,
        {"adapter": "mqtt", "topic": "{device}/status/switch:0", "power": "$.apower", "unit": "W"},
        {"device": "its MQTT prefix, e.g. shellyplus1pm-a8032ab12345"},
    ),
    Template(
        "shelly-3em-gen1-http",
        "a Shelly 3EM of the first generation polled over HTTP (`/status`): the total power and each "
        "phase's current",
        {
            "adapter": "http",
            "url": "http://{host}/status",
            "power": "$.total_power",
            "currents": ["$.emeters[0].current", "$.emeters[1].current", "$.emeters[2].current"],
            "unit": "W",
        },
        {"host": "its address"},
    ),
    Template(
        "dsmr",
        "a smart meter's DSMR P1 port (DSMR 2.2 to 5, Fluvius and the other variants dsmr-parser knows) on a "
        "P1 cable; `baudrate` and `dsmr_version` may be set",
        {"adapter": "dsmr", "serial_port": "{serial_port}"},
        {"serial_port": "its serial port, e.g. /dev/ttyUSB0"},
    ),
    Template(
        "dsmr-tcp",
        "a DSMR P1 port through a P1 dongle or ser2net",
        {"adapter": "dsmr", "host": "{host}", "port": "{port}"},
        {"host": "the bridge's address", "port": "its TCP port"},
    ),
    Template(
        "sml",
        "a German smart meter's optical interface (SML) read by an IR head on a serial port (9600 baud)",
        {"adapter": "sml", "serial_port": "{serial_port}"},
        {"serial_port": "its serial port, e.g. /dev/ttyUSB0"},
    ),
    Template(
        "sml-tcp",
        "an SML IR head with Wi-Fi, or one on ser2net",
        {"adapter": "sml", "host": "{host}", "port": "{port}"},
        {"host": "the bridge's address", "port": "its TCP port"},
    ),
    Template(
        "sunspec-meter",
        "a SunSpec meter (models 201–204) over Modbus TCP: the total power and each phase's current; set "
        "`port` (502) and `unit_id` (1) where they differ",
        {"adapter": "sunspec", "host": "{host}"},
        {"host": "the meter's or its gateway's address"},
    ),
    Template(
        "sunspec-inverter",
        "a SunSpec PV inverter (models 101–103, 111–113, 701) over Modbus TCP: its AC power; for role `pv`",
        {"adapter": "sunspec", "host": "{host}"},
        {"host": "the inverter's address"},
    ),
    Template(
        "sunspec-battery",
        "a SunSpec battery (models 802, 124, with its inverter) over Modbus TCP: state of charge and power, "
        "and the EMS's setpoint written where it has a 124 model; for role `battery`",
        {"adapter": "sunspec", "host": "{host}"},
        {"host": "the battery inverter's address"},
    ),
)

BY_NAME = {t.name: t for t in TEMPLATES}


def expand(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A ``meters:`` entry with its template's settings filled in (the entry's own settings win) and the
    template's params used up; an entry without a template as it is. ValueError naming what is wrong."""
    name = entry.get("template")
    if name is None:
        return dict(entry)
    template = BY_NAME.get(str(name))
    if template is None:
        raise ValueError(f"unknown template {name!r}; the templates are: {', '.join(BY_NAME)}")
    missing = [p for p in template.params if p not in entry]
    if missing:
        wanted = "; ".join(f"{p}: {template.params[p]}" for p in missing)
        raise ValueError(f"template {template.name} needs {wanted}")
    values = {p: str(entry[p]) for p in template.params}
    out = {k: _fill(v, values) for k, v in template.settings.items()}
    out.update({k: v for k, v in entry.items() if k not in template.params})
    return out


def _fill(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format_map(values)
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def templates_markdown() -> str:
    """The templates as the table in ``docs/devices.md``."""
    lines = ["| template | what it is | give beside it | reads |", "|---|---|---|---|"]
    for t in TEMPLATES:
        params = "<br>".join(f"`{p}`: {what}" for p, what in t.params.items())
        reads = ", ".join(
            f"`{k}`: `{v}`" if not isinstance(v, list) else f"`{k}`: " + ", ".join(f"`{x}`" for x in v)
            for k, v in t.settings.items()
            if k != "unit"
        )
        lines.append(f"| `{t.name}` | {t.summary} | {params} | {reads} |")
    return "\n".join(lines) + "\n"

"""Devices by template name: a site file's ``meters:`` entry filled in from ``site.templates``, its errors
naming what is missing, and ``docs/devices.md``'s table the same as the code's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chargeflow.site.config import ConfigError, parse_meters
from chargeflow.site.templates import TEMPLATES, templates_markdown

ROOT = Path(__file__).resolve().parents[2]


def site(*meters: dict[str, Any]) -> dict[str, Any]:
    return {
        "grid": {"max_import_w": 20_000, "max_export_w": 0},
        "circuits": [
            {"id": "main", "max_current_a": 32},
            {"id": "basement", "parent": "main", "max_current_a": 16},
        ],
        "meters": list(meters),
    }


def test_a_template_fills_in_the_adapter_and_where_each_value_is() -> None:
    (grid, pump) = parse_meters(
        site(
            {
                "id": "grid",
                "role": "grid",
                "template": "shelly-pro-3em",
                "device": "shellypro3em-c8f09e8a1b2c",
            },
            {
                "id": "pump",
                "role": "circuit",
                "circuit": "basement",
                "template": "shelly-3em-gen1-http",
                "host": "192.0.2.7",
                "sign": -1,
            },
        )
    ).meters
    assert (grid.template, grid.adapter, grid.topic) == (
        "shelly-pro-3em",
        "mqtt",
        "shellypro3em-c8f09e8a1b2c/status/em:0",
    )
    assert grid.power == "$.total_act_power"
    assert grid.currents == ["$.a_current", "$.b_current", "$.c_current"]
    assert (pump.adapter, pump.url, pump.power) == ("http", "http://192.0.2.7/status", "$.total_power")
    assert pump.currents == ["$.emeters[0].current", "$.emeters[1].current", "$.emeters[2].current"]
    assert pump.sign == -1  # the entry's own setting wins


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"template": "shelly-pro-3em"}, r"template shelly-pro-3em needs device: its MQTT prefix"),
        ({"template": "shelly-4em"}, r"unknown template 'shelly-4em'; the templates are: tasmota, "),
        ({"template": "tasmota", "device": "x", "colour": "red"}, r"meters\[0\]\.colour: Extra inputs"),
    ],
)
def test_a_template_that_cannot_be_used_says_why(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_meters(site({"id": "grid", "role": "grid", **entry}))


def test_every_template_makes_a_valid_meter() -> None:
    for t in TEMPLATES:
        # each param "x", but a port must read as a number
        entry = {"id": t.name, "role": "grid", "template": t.name, **{p: "x" for p in t.params}}
        entry.update({"port": "8088"} if "port" in t.params else {})
        (meter,) = parse_meters(site(entry)).meters
        assert meter.adapter == t.settings["adapter"]


def test_the_docs_list_the_templates_the_code_knows() -> None:
    text = (ROOT / "docs" / "devices.md").read_text(encoding="utf-8")
    start, end = text.index("<!-- templates:start -->\n"), text.index("<!-- templates:end -->")
    assert text[start + len("<!-- templates:start -->\n") : end] == templates_markdown(), (
        "docs/devices.md is out of date: paste `chargeflow devices templates --markdown` between the markers"
    )

"""``chargeflow allocate --strategy mpc``: the plan's first slot, or the core split when the plan is late or
breaks a rule (``commands.allocate.allocate``)."""

from __future__ import annotations

import copy
from typing import Any

from chargeflow.commands.allocate import allocate, parse_step

BASE: dict[str, Any] = {
    "now": "2026-03-02T08:00:00Z",
    "step_s": 300,
    "voltage_v": 230,
    "grid": {"max_import_w": 100000, "max_export_w": 0},
    "circuits": [
        {"id": "main", "parent": None, "max_current_a": 63},
        {"id": "garage", "parent": "main", "max_current_a": 32},
    ],
    "evs": [
        # a leaves in 1 h wanting exactly what 32 A on three phases gives in that hour; b stays 10 h.
        {"id": "a", "circuit": "garage", "phases": 3, "l1_phase": 1, "min_current_a": 6,
         "max_current_a": 32, "needed_wh": 0, "wished_wh": 22080, "departure": "2026-03-02T09:00:00Z"},
        {"id": "b", "circuit": "garage", "phases": 3, "l1_phase": 1, "min_current_a": 6,
         "max_current_a": 32, "needed_wh": 0, "wished_wh": 20000, "departure": "2026-03-02T18:00:00Z"},
    ],
    "strategy": "equal",
}  # fmt: skip


def currents(result: dict[str, Any]) -> dict[str, float]:
    return {ev["id"]: ev["current_a"] for ev in result["evs"]}


def test_mpc_gives_the_fuse_to_the_ev_that_must_leave_first() -> None:
    step = parse_step(BASE)
    result = allocate(step, "mpc", 5.0)
    assert result["mpc_fell_back"] is False
    assert currents(result) == {"a": 32.0, "b": 0.0}
    # The input's own strategy (equal shares) splits the fuse: a would leave short.
    assert currents(allocate(step, None, 5.0)) == {"a": 16.0, "b": 16.0}


def test_when_the_needs_do_not_fit_the_fuse_the_core_split_stands() -> None:
    data = copy.deepcopy(BASE)
    for ev in data["evs"]:
        ev["needed_wh"] = ev["wished_wh"] = 20000
        ev["departure"] = "2026-03-02T08:30:00Z"
    step = parse_step(data)
    result = allocate(step, "mpc", 5.0)
    assert result["mpc_fell_back"] is True
    core = allocate(step, None, 5.0)
    assert result["evs"] == core["evs"]
    assert sum(currents(result).values()) == 32.0  # limits, never none: the fuse is shared


def test_a_late_plan_falls_back_to_the_core_split() -> None:
    step = parse_step(BASE)
    result = allocate(step, "mpc", 1e-9)
    assert result["mpc_fell_back"] is True
    assert result["evs"] == allocate(step, None, 1e-9)["evs"]
    assert currents(result) == {"a": 16.0, "b": 16.0}


def test_a_core_strategy_overrides_the_input() -> None:
    result = allocate(parse_step(BASE), "edf", 5.0)
    assert "mpc_fell_back" not in result
    assert currents(result) == {"a": 32.0, "b": 0.0}

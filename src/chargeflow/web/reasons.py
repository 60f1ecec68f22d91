"""Reason codes (``docs/allocate.md``, smart charging's fallbacks) in words a driver or owner reads."""

from __future__ import annotations

_WORDS = {
    "wished": "nothing limits it: it gets all it asks for",
    "grid_import_limit": "the site's grid connection is at its limit",
    "ess_covers_needs": "the site battery helps to cover the needs; nothing extra can be granted",
    "needs_exceed_grid": "the grid connection cannot carry every EV's need",
    "needs_exceed_ess_power": "the grid and the site battery at full power cannot carry every EV's need",
    "needs_exceed_ess_energy": "the site battery is empty and the grid cannot carry every EV's need",
    "building_over_grid_limit": "the building alone uses all the grid connection allows",
    "station_max": "the charging station's maximum current",
    "ev_max": "the car's own maximum charging power",
    "energy_reached": "the energy wished is (almost) reached",
    "price_cap": "energy costs more now than the price cap set",
    "ev_below_station_min": "the car takes less than the station's minimum current",
    "suspended_overdraw": "paused by the site: the car drew more than it was allowed",
    "overdrawing": "the car draws more than it may: the site counts what it draws, and pauses it soon",
    "not_on_the_site": "held at 0 A: the site file has no place for this station or EVSE",
}

_FALLBACK = "the site runs on a safe fixed current"


def in_words(code: str | None) -> str:
    """The reason for a limit in words; an unknown code is shown as it is rather than hidden."""
    if not code:
        return "no limit reported yet"
    if code.startswith("fuse:"):
        _, circuit, phase = [*code.split(":"), "", ""][:3]
        return f"the fuse of circuit {circuit} is full on phase {phase}"
    if code.startswith("fallback"):
        detail = code.removeprefix("fallback").strip("_:").replace("_", " ")
        return f"{_FALLBACK} ({detail})" if detail else _FALLBACK
    return _WORDS.get(code, code.replace("_", " "))

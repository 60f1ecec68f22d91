"""Learn an EV's maximum current from what it actually draws.

An EV that takes 16 A under a 32 A limit is an EV that can take 16 A (its on-board charger, its battery's
state of charge or temperature limit it); the split gives the unused headroom to others. The estimate is
kept a little above the draw, released when the EV presses against it, and dropped from time to time so
that an EV whose own limit rose (a warmer battery) is offered the station's maximum again.
"""

from __future__ import annotations

from dataclasses import dataclass

# An EV drawing more than this below its offered limit limits itself. Meter noise of a few tenths of an
# ampere and chargers on 0.5 A or 1 A steps are common; a smaller margin would mistake them for a limit.
UNDERDRAW_MARGIN_A = 1.5
# What the estimate keeps above the measured draw.
HEADROOM_A = 1.0
# A draw this close to an offer made from the estimate means the EV wants more: release the estimate.
PRESS_A = 0.5
# Steps a learned limit is held before the station's own maximum is offered again.
RELEARN_AFTER_STEPS = 30
_SAME_A = 0.05


@dataclass(frozen=True, slots=True)
class EvMaxEstimate:
    current_a: float | None = None  # None: nothing learned, the station's maximum applies
    steps_held: int = 0


def learn_ev_max(
    previous: EvMaxEstimate, offered_a: float, drawn_a: float, min_current_a: float
) -> EvMaxEstimate:
    """Update the estimate after a step in which the EV was offered ``offered_a`` and drew ``drawn_a``.

    ``drawn_a`` is the highest of the EV's phase currents. A draw below the station's minimum current says
    nothing about the EV's maximum (it may be full or paused), so the estimate is kept as it is.
    """
    if offered_a <= 0 or drawn_a < min_current_a:
        return previous
    gap_a = offered_a - drawn_a
    if gap_a > UNDERDRAW_MARGIN_A:
        learned_a = drawn_a + HEADROOM_A
        if previous.current_a is not None and abs(previous.current_a - learned_a) <= _SAME_A:
            return _held(previous)
        return EvMaxEstimate(learned_a)
    if previous.current_a is None:
        return previous
    offered_from_estimate = offered_a >= previous.current_a - _SAME_A
    if offered_from_estimate and gap_a < PRESS_A:
        return EvMaxEstimate(None)
    return _held(previous)


def _held(previous: EvMaxEstimate) -> EvMaxEstimate:
    steps = previous.steps_held + 1
    if steps >= RELEARN_AFTER_STEPS:
        return EvMaxEstimate(None)
    return EvMaxEstimate(previous.current_a, steps)

"""Learning an EV's maximum from what it draws."""

from chargeflow.csm.evmax import RELEARN_AFTER_STEPS, EvMaxEstimate, learn_ev_max


def test_an_ev_drawing_16_a_under_32_a_is_learned_as_a_16_a_ev() -> None:
    e = learn_ev_max(EvMaxEstimate(), offered_a=32, drawn_a=16, min_current_a=6)
    assert e.current_a == 17.0  # the draw and a little headroom


def test_an_ev_drawing_what_it_is_offered_teaches_nothing() -> None:
    assert learn_ev_max(EvMaxEstimate(), offered_a=16, drawn_a=15.8, min_current_a=6).current_a is None


def test_a_steady_ev_keeps_its_estimate_without_oscillating() -> None:
    e = learn_ev_max(EvMaxEstimate(), 32, 16, 6)
    seen = set()
    for _ in range(RELEARN_AFTER_STEPS - 2):
        e = learn_ev_max(e, offered_a=e.current_a or 32, drawn_a=16.0, min_current_a=6)
        seen.add(e.current_a)
    assert seen == {17.0}


def test_the_estimate_is_dropped_now_and_then_to_offer_the_station_maximum_again() -> None:
    e = learn_ev_max(EvMaxEstimate(), 32, 16, 6)
    for _ in range(RELEARN_AFTER_STEPS):
        e = learn_ev_max(e, offered_a=17.0, drawn_a=16.0, min_current_a=6)
    assert e.current_a is None


def test_an_ev_pressing_against_its_estimate_is_released() -> None:
    e = learn_ev_max(EvMaxEstimate(), 32, 16, 6)
    assert learn_ev_max(e, offered_a=17.0, drawn_a=16.9, min_current_a=6).current_a is None


def test_an_ev_that_slows_down_is_learned_lower() -> None:
    e = learn_ev_max(EvMaxEstimate(), 32, 16, 6)
    assert learn_ev_max(e, offered_a=17.0, drawn_a=10.0, min_current_a=6).current_a == 11.0


def test_a_paused_or_full_ev_says_nothing_about_its_maximum() -> None:
    e = learn_ev_max(EvMaxEstimate(), 32, 16, 6)
    assert learn_ev_max(e, offered_a=17.0, drawn_a=0.0, min_current_a=6) == e
    assert learn_ev_max(e, offered_a=0.0, drawn_a=0.0, min_current_a=6) == e


def test_an_offer_lowered_by_sharing_keeps_the_estimate() -> None:
    # The EV was offered 12 A because others needed the rest; drawing 12 A says nothing new.
    e = learn_ev_max(EvMaxEstimate(), 32, 16, 6)
    assert learn_ev_max(e, offered_a=12.0, drawn_a=11.9, min_current_a=6).current_a == 17.0

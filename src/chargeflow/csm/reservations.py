"""Reservations (pure): what the station's answers and notices mean for a reservation's status."""

from __future__ import annotations

from typing import Final

from chargeflow.csm.model import ReservationStatus

# ReserveNow answers (1.6 and 2.0.1 use the same words): only Accepted holds the connector.
_ANSWERS: Final = {"Accepted": ReservationStatus.ACCEPTED}
# 2.0.1 ReservationStatusUpdate: the station ended the reservation itself.
_NOTICES: Final = {"Expired": ReservationStatus.EXPIRED, "Removed": ReservationStatus.REMOVED}


def after_answer(answer: str) -> ReservationStatus:
    return _ANSWERS.get(answer, ReservationStatus.REJECTED)


def after_notice(notice: str) -> ReservationStatus | None:
    return _NOTICES.get(notice)


def after_cancel(answer: str) -> ReservationStatus | None:
    """CancelReservation: Accepted ends it; Rejected (unknown to the station) leaves it as it was."""
    return ReservationStatus.CANCELLED if answer == "Accepted" else None

"""AuCh: decide whether an id token may charge (pure: the token record and ``now`` in, a decision out)."""

from __future__ import annotations

from datetime import datetime

from chargeflow.csm.model import AuthDecision, AuthStatus, IdTokenRecord


def decide(record: IdTokenRecord | None, now: datetime, *, accept_unknown: bool = False) -> AuthDecision:
    """A known token keeps its status until its expiry; an unknown one is Invalid unless free vend."""
    if record is None:
        return AuthDecision(AuthStatus.ACCEPTED if accept_unknown else AuthStatus.INVALID)
    if record.expiry is not None and record.expiry <= now:
        return AuthDecision(AuthStatus.EXPIRED, record.expiry)
    return AuthDecision(record.status, record.expiry)

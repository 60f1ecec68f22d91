"""Who may see what: the site owner's login sessions with CSRF tokens, and the drivers' link secrets.

The owner's password is kept only as a salted hash (``csm.passwords``). A login opens a server-side
session named by a random cookie (HttpOnly, SameSite=Strict, Secure over https) that carries its own CSRF
token; every form POST must echo it. A driver needs no account: the link (or QR code) to a session
carries a secret derived from the session id with a key only the server holds, so one session's link
opens that session and no other.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from chargeflow.csm.passwords import hash_password, verify_password

OWNER_COOKIE = "chargeflow_owner"


@dataclass(frozen=True, slots=True)
class OwnerSession:
    csrf: str
    expires: datetime


class OwnerAuth:
    def __init__(self, password: str, lifetime: timedelta = timedelta(hours=12)) -> None:
        self._hash = hash_password(password, secrets.token_bytes(16))
        self._lifetime = lifetime
        self._sessions: dict[str, OwnerSession] = {}

    def login(self, password: str, now: datetime) -> str | None:
        """A new session id for the right password, else None."""
        if not verify_password(password, self._hash):
            return None
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = OwnerSession(secrets.token_urlsafe(32), now + self._lifetime)
        return session_id

    def session(self, session_id: str | None, now: datetime) -> OwnerSession | None:
        if not session_id:
            return None
        found = self._sessions.get(session_id)
        if found is None or found.expires <= now:
            self._sessions.pop(session_id, None)
            return None
        return found

    def logout(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    @staticmethod
    def csrf_ok(session: OwnerSession, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(session.csrf.encode(), token.encode())


class DriverLinks:
    """The secret in a driver's link to one session: HMAC of its id under a server key."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    def secret(self, session_id: int) -> str:
        return hmac.new(self._key, f"session:{session_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def allows(self, session_id: int, secret: str | None) -> bool:
        return secret is not None and hmac.compare_digest(self.secret(session_id).encode(), secret.encode())

"""Who may see what: the site owner's login sessions with CSRF tokens, and the drivers' link secrets.

The owner's password is kept only as a salted hash (``csm.passwords``). A login opens a server-side
session named by a random cookie (HttpOnly, SameSite=Strict, Secure over https) that carries its own CSRF
token; every form POST must echo it. A driver needs no account: the link (or QR code) to a session
carries a secret derived from the session id with a key only the server holds, so one session's link
opens that session and no other.

Guessing the owner's password is slowed per client address: after ``MAX_FAILURES`` wrong passwords in a
row, that address may try again only after a lockout that starts at one minute and doubles with every
further failure, up to fifteen minutes; a right password clears its count. Per address, so that whoever
guesses cannot lock the owner out from everywhere.

A password check costs tens of milliseconds of CPU (PBKDF2, ``csm.passwords``): 400 guesses on the event loop
raised every station's OCPP round trip from 3.8 to 200 ms (issue 13, item 8). ``login_async`` runs it on a
worker thread (hashlib releases the GIL while it hashes), ``HASHING_AT_ONCE`` at a time; each attempt is
counted before its check, so guesses sent at once cannot all pass the lockout while one is hashed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from chargeflow.csm.passwords import hash_password, verify_password

OWNER_COOKIE = "chargeflow_owner"
MAX_FAILURES = 5
FIRST_LOCKOUT = timedelta(minutes=1)
LONGEST_LOCKOUT = timedelta(minutes=15)
MAX_TRACKED_CLIENTS = 10_000
HASHING_AT_ONCE = 2  # password checks running at once; the others wait (one core stays for the rest)
CODE_DIGITS = 8


class LoginThrottled(Exception):
    """Too many wrong passwords from this client; ``retry_after_s`` until it may try again."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class _Failures:
    count: int = 0
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class OwnerSession:
    csrf: str
    expires: datetime


class OwnerAuth:
    def __init__(self, password: str, lifetime: timedelta = timedelta(hours=12)) -> None:
        self._hash = hash_password(password, secrets.token_bytes(16))
        self._lifetime = lifetime
        self._sessions: dict[str, OwnerSession] = {}
        self._failures: dict[str, _Failures] = {}
        self._hashing = asyncio.Semaphore(HASHING_AT_ONCE)

    def login(self, password: str, now: datetime, client: str = "") -> str | None:
        """A new session id for the right password, else None; raises ``LoginThrottled`` while the
        client is locked out (the password is then not even checked)."""
        self._check_lockout(client, now)
        self._failed(client, now)
        return self._checked(verify_password(password, self._hash), client, now)

    async def login_async(self, password: str, now: datetime, client: str = "") -> str | None:
        """``login`` with the password checked on a worker thread, at most ``HASHING_AT_ONCE`` at a time."""
        self._check_lockout(client, now)
        # counted as a failure before the check and cleared if right: once the check is awaited (off the
        # event loop), many attempts at once must not all pass the lockout while the first is hashed
        self._failed(client, now)
        async with self._hashing:
            right = await asyncio.to_thread(verify_password, password, self._hash)
        return self._checked(right, client, now)

    def _check_lockout(self, client: str, now: datetime) -> None:
        failures = self._failures.get(client)
        if failures is not None and failures.locked_until is not None and now < failures.locked_until:
            raise LoginThrottled(max(1, math.ceil((failures.locked_until - now).total_seconds())))

    def _checked(self, right: bool, client: str, now: datetime) -> str | None:
        """The attempt was counted as a failure before its check: a right password clears the count."""
        if not right:
            return None
        self._failures.pop(client, None)
        session_id = secrets.token_urlsafe(32)
        self._sessions[session_id] = OwnerSession(secrets.token_urlsafe(32), now + self._lifetime)
        return session_id

    def _failed(self, client: str, now: datetime) -> None:
        if client not in self._failures and len(self._failures) >= MAX_TRACKED_CLIENTS:
            # Forget the clients that are not locked out now; a flood of addresses cannot grow this.
            self._failures = {
                c: f for c, f in self._failures.items() if f.locked_until is not None and f.locked_until > now
            }
        failures = self._failures.setdefault(client, _Failures())
        failures.count += 1
        if failures.count >= MAX_FAILURES:
            lockout = min(FIRST_LOCKOUT * 2 ** (failures.count - MAX_FAILURES), LONGEST_LOCKOUT)
            failures.locked_until = now + lockout

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

    def code(self, session_id: int) -> str:
        """The session's short code, for the station's display or the receipt: eight digits (a phone's
        number pad types them), under the same key. Short enough to type, so only a throttled form
        trades it for the link (``web.driver``): at 10 wrong codes and then one per 30 s per station, a
        day of guessing finds a running session with a chance of about 3 in 100,000."""
        digest = hmac.new(self._key, f"code:{session_id}".encode(), hashlib.sha256).digest()
        return f"{int.from_bytes(digest[:8], 'big') % 10**CODE_DIGITS:0{CODE_DIGITS}d}"

"""Station passwords (OCPP security profile 1) stored as salted PBKDF2-SHA256 hashes (pure)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

_SCHEME: Final = "pbkdf2_sha256"
DEFAULT_ITERATIONS: Final = 120_000


def hash_password(password: str, salt: bytes, iterations: int = DEFAULT_ITERATIONS) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{_SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        rounds = int(iterations)
        salt_bytes = bytes.fromhex(salt)
    except ValueError:
        return False
    if scheme != _SCHEME:
        return False
    candidate = hashlib.pbkdf2_hmac("sha256", password.encode(), salt_bytes, rounds)
    return hmac.compare_digest(candidate.hex(), digest)

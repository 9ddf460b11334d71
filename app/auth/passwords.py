"""Human passwords: argon2id. (API keys are not passwords: see app.auth.api_keys.)"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

# Verified against when the username is unknown, so an unknown user costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("dutyline-timing-equaliser")

MIN_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    try:
        return _hasher.verify(hashed or _DUMMY_HASH, password) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > 256:
        return "must be at most 256 characters"
    if password.isdigit() or password.isalpha():
        return "must mix letters with digits or symbols"
    return None

"""Short incident codes, easy to read aloud and to type in an SMS reply (no 0/O, 1/I/L look-alikes)."""

from __future__ import annotations

import secrets

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 4  # 31**4 ≈ 920,000 codes; a collision is retried with a new code


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))

"""The simulator's provider credentials: random per installation, derived from one secret kept in the database.

Every replica derives the same values (so callbacks signed by one replica's simulator verify on another), and no
two installations share them. A provider module asks for its own with `derive(secret, "<provider>:<name>")`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlmodel import Session

from app.auth import tokens
from app.clock import Clock

SECRET_NAME = "simulator"


def derive(secret: str, label: str, length: int = 32) -> str:
    """A hex credential for `label` (e.g. "twilio:auth_token"), `length` characters long."""
    return hmac.new(secret.encode(), label.encode(), hashlib.sha256).hexdigest()[:length]


def installation_secret(session: Session, *, clock: Clock) -> str:
    return tokens.instance_secret(session, SECRET_NAME, clock=clock)


@dataclass(frozen=True)
class TwilioCredentials:
    account_sid: str
    auth_token: str


def twilio(secret: str) -> TwilioCredentials:
    """Twilio's shape: an account SID `AC` + 32 hex digits, a 32-hex-digit auth token."""
    return TwilioCredentials(
        account_sid="AC" + derive(secret, "twilio:account_sid"), auth_token=derive(secret, "twilio:auth_token")
    )

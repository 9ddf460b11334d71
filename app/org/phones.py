"""Mobile phone numbers: parsed with phonenumbers, stored as E.164."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

DEFAULT_REGION = "CN"
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def normalize_mobile(raw: str, region: str = DEFAULT_REGION) -> str:
    """The E.164 form of a valid mobile number; ValueError with a reader-facing reason otherwise."""
    text = raw.strip()
    if not text:
        raise ValueError("a mobile phone number is required")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise ValueError(f"not a phone number ({exc.args[0] if exc.args else 'unparseable'})") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{text!r} is not a valid phone number")
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise ValueError(f"{text!r} is not a mobile number (SMS goes to mobile numbers only)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

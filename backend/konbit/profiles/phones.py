"""Phone numbers as people and providers write them, normalised to E.164 (profiles hold E.164).

Providers send ``+50937001234``, ``50937001234``, ``37001234`` or ``+509 3700-1234``; a
farmer's profile holds E.164. Numbers without a country code are read in the default
region (Haiti unless ``KONBIT_SMS_DEFAULT_REGION`` says otherwise).
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "HT"
#: Longer input is refused before it reaches the parser (E.164 has at most 15 digits).
MAX_INPUT = 40


class BadPhone(ValueError):
    """Not a phone number that could receive an SMS."""


def normalise(raw: str, region: str = DEFAULT_REGION) -> str:
    """``raw`` as E.164 (``+50937001234``); raises :class:`BadPhone`."""
    text = (raw or "").strip()
    if not text or len(text) > MAX_INPUT:
        raise BadPhone(f"not a phone number: {raw!r:.50}")
    if text.isdigit() and len(text) > 10:
        # 50937001234 (Africa's Talking without "+"): international without the plus.
        text = "+" + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise BadPhone(f"not a phone number: {raw!r:.50}") from None
    if not phonenumbers.is_possible_number(number):
        raise BadPhone(f"not a possible phone number: {raw!r:.50}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)  # phones text again and again; parsing costs a tenth of an SMS
def try_normalise(raw: str, region: str = DEFAULT_REGION) -> str | None:
    try:
        return normalise(raw, region)
    except BadPhone:
        return None


def masked(phone: str) -> str:
    """For logs: ``+509****1234`` (a phone number is personal data)."""
    if len(phone) <= 8:
        return "****"
    return phone[:4] + "****" + phone[-4:]

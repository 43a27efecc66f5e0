"""How a message travels: GSM-7 when every character is in the GSM 03.38 alphabet, else UCS-2.

GSM-7 holds 160 septets in one SMS, 153 per part of a concatenated message (the user data
header takes the rest); a character of the extension table (``€ [ ] { } \\ ~ ^ |``) costs
two septets (escape + character) and is never split across parts. UCS-2 holds 70 UTF-16
code units, 67 per part; a surrogate pair is never split. Kreyòl's ``è ò à`` are in GSM-7;
French ``ç ê î ô û`` are not (such a message goes as UCS-2).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM_CODEC = "gsm03.38"


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


#: (single message, per part of a concatenated message) in septets or UTF-16 units.
LIMITS = {Encoding.GSM7: (160, 153), Encoding.UCS2: (70, 67)}


@lru_cache(maxsize=8192)
def gsm_septets(char: str) -> int | None:
    """Septets ``char`` costs in GSM-7 (1 or 2), or None when it is not in the alphabet.

    Cached per character: the codec works a character at a time and is slow.
    """
    try:
        return len(char.encode(GSM_CODEC))
    except (UnicodeEncodeError, ValueError):
        return None


def is_gsm7(text: str) -> bool:
    return all(gsm_septets(c) is not None for c in set(text))


def choose(text: str) -> Encoding:
    return Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2


def units(char: str, encoding: Encoding) -> int:
    """What ``char`` costs in ``encoding``: septets, or UTF-16 code units."""
    if encoding is Encoding.GSM7:
        cost = gsm_septets(char)
        if cost is None:
            raise ValueError(f"{char!r} is not in the GSM 03.38 alphabet")
        return cost
    return len(char.encode("utf-16-le")) // 2


def length(text: str, encoding: Encoding | None = None) -> int:
    encoding = encoding or choose(text)
    if encoding is Encoding.UCS2:
        return len(text.encode("utf-16-le")) // 2
    # Per distinct character: str.count runs in C, a reply has a few dozen distinct ones.
    return sum(units(c, encoding) * text.count(c) for c in set(text))


@dataclass(frozen=True)
class Segmented:
    """A message as it goes on the air: its encoding and its parts."""

    encoding: Encoding
    parts: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.parts)


def segment(text: str) -> Segmented:
    """Split ``text`` into the parts a phone reassembles, in the cheapest encoding."""
    encoding = choose(text)
    single, per_part = LIMITS[encoding]
    size = length(text, encoding)
    if size <= single:
        return Segmented(encoding, (text,))
    if size == len(text):  # a unit per character: plain slices
        return Segmented(
            encoding, tuple(text[i : i + per_part] for i in range(0, len(text), per_part))
        )
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:  # a str iterates by code point: surrogate pairs stay whole
        cost = units(char, encoding)
        if used + cost > per_part:
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += cost
    if current:
        parts.append("".join(current))
    return Segmented(encoding, tuple(parts))


def parts_needed(text: str) -> int:
    return segment(text).count

"""The SMS command language: a keyword, then its arguments, in Kreyòl, French or English.

Matching ignores case and accents (``RÉCOLTE``, ``recolte`` and ``Rekòt`` are one word
each way they are typed). Each keyword belongs to the languages that use it; the reply
goes out in the sender's profile language, else in the keyword's language when it has
only one, else in Kreyòl.

=================  =====================  =========================  ==========================
what               Kreyòl                 French                     English
=================  =====================  =========================  ==========================
help               ED                     AIDE                       HELP
my lots            LO                     LOTS, MES LOTS             LOTS, MY LOTS
one lot            LO 12                  LOT 12                     LOT 12
my payments        PEMAN                  PAIEMENTS                  PAYMENTS
orders and prices  PRI, KOMAND            PRIX, COMMANDES            PRICES, ORDERS
my farmer code     KOD                    CODE                       CODE
language           LANG FR                LANGUE EN                  LANG HT (or KREYOL, ...)
check a receipt    RESI 7-482913          RECU 7-482913              RECEIPT 7-482913
record a lot       REKOT 10019 250 2 1234 RECOLTE 10019 250 2 1234   HARVEST 10019 250 2 1234
=================  =====================  =========================  ==========================

``parse`` never raises: anything else is an ``unknown`` command.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from konbit.sms.messages import Lang

MAX_TEXT = 480
MAX_GRADE = 99
MAX_GRAMS = 10**9  # 1,000 tonnes: more is a typo
PIN = re.compile(r"^[0-9]{4,8}$")
NUMBER = re.compile(r"^[0-9]+([.,][0-9]+)?$")
GLUED = re.compile(r"^([A-Z]+)#?([0-9]+)$")

HT: Final = ("ht",)
FR: Final = ("fr",)
EN: Final = ("en",)
FR_EN: Final = ("fr", "en")
HT_EN: Final = ("ht", "en")

#: Normalised keyword -> (command, languages that use it).
KEYWORDS: Final[dict[str, tuple[str, tuple[Lang, ...]]]] = {
    "ED": ("help", HT),
    "EDE": ("help", HT),
    "AIDE": ("help", FR),
    "HELP": ("help", EN),
    "?": ("help", ()),
    "LO": ("lots", HT),
    "LOT": ("lots", FR_EN),
    "LOTS": ("lots", FR_EN),
    "PEMAN": ("payments", HT),
    "PAIEMENT": ("payments", FR),
    "PAIEMENTS": ("payments", FR),
    "PAYMENT": ("payments", EN),
    "PAYMENTS": ("payments", EN),
    "PRI": ("orders", HT),
    "KOMAND": ("orders", HT),
    "PRIX": ("orders", FR),
    "COMMANDE": ("orders", FR),
    "COMMANDES": ("orders", FR),
    "PRICE": ("orders", EN),
    "PRICES": ("orders", EN),
    "ORDERS": ("orders", EN),
    "KOD": ("code", HT),
    "CODE": ("code", FR_EN),
    "LANG": ("language", HT_EN),
    "LANGUE": ("language", FR),
    "LANGUAGE": ("language", EN),
    "RESI": ("receipt", HT),
    "RECU": ("receipt", FR),
    "RECEIPT": ("receipt", EN),
    "REKOT": ("harvest", HT),
    "REKOLT": ("harvest", HT),
    "REKOLTE": ("harvest", HT),
    "RECOLTE": ("harvest", FR),
    "HARVEST": ("harvest", EN),
}

#: Words before or after a keyword that change nothing ("MY LOTS", "LO MWEN YO").
FILLERS: Final = frozenset({"MY", "MES", "MON", "MA", "MWEN", "YO", "PLEASE", "SVP", "TANPRI"})

LANGUAGE_WORDS: Final[dict[str, Lang]] = {
    "HT": "ht",
    "KREYOL": "ht",
    "KREOL": "ht",
    "CREOLE": "ht",
    "AYISYEN": "ht",
    "FR": "fr",
    "FRANCAIS": "fr",
    "FRANSE": "fr",
    "FRENCH": "fr",
    "EN": "en",
    "ENGLISH": "en",
    "ANGLE": "en",
    "ANGLAIS": "en",
}

CROP_WORDS: Final[dict[str, int]] = {
    "MANGO": 1,
    "MANGUE": 1,
    "MANGOS": 1,
    "MANGOES": 1,
    "MANGUES": 1,
    "ZABOKA": 2,
    "AVOCAT": 2,
    "AVOCATS": 2,
    "AVOCADO": 2,
    "AVOCADOS": 2,
}


@dataclass(frozen=True)
class Harvest:
    """An agent's lot: farmer code, grams, grade, crop (None: the default) and PIN."""

    farmer_code: str
    grams: int
    grade: int
    crop: int | None
    pin: str | None


@dataclass(frozen=True)
class Command:
    kind: str
    langs: tuple[Lang, ...] = ()
    lot_id: int | None = None
    language: Lang | None = None
    receipt: str | None = None
    harvest: Harvest | None = None
    #: Why a harvest cannot be read: usage, bad_kg, bad_grade, need_pin.
    problem: str | None = None
    #: What the agent typed, for the example in a reply (farmer code, kg, grade).
    typed: tuple[str, ...] = ()


def normalise(text: str) -> str:
    """Upper case, accents dropped, one space between words; at most MAX_TEXT characters."""
    decomposed = unicodedata.normalize("NFKD", text[:MAX_TEXT])
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.upper().split())


def tokens(text: str) -> list[str]:
    out: list[str] = []
    for raw in normalise(text).split(" "):
        word = raw.strip(".!:;\"'()[]")
        if not word:
            continue
        glued = GLUED.match(word)
        if glued and glued.group(1) in KEYWORDS:  # LO12, LOT#12
            out.extend([glued.group(1), glued.group(2)])
        else:
            out.append(word)
    return out


def parse(text: str) -> Command:
    """The command in ``text``; never raises."""
    words = tokens(text or "")
    while words and words[0] in FILLERS:
        words.pop(0)
    if not words:
        return Command("empty")
    head, args = words[0], [w for w in words[1:] if w not in FILLERS]
    if head in LANGUAGE_WORDS and not args:
        lang = LANGUAGE_WORDS[head]
        return Command("language", (lang,), language=lang)
    entry = KEYWORDS.get(head)
    if entry is None:
        return Command("unknown")
    kind, langs = entry
    if kind == "lots":
        if not args:
            return Command("lots", langs)
        lot = _int(args[0].lstrip("#"))
        if lot is None or lot < 1 or len(args) > 1:
            return Command("unknown", langs)
        return Command("lot", langs, lot_id=lot)
    if kind == "language":
        if not args:
            return Command("language", langs)
        chosen = LANGUAGE_WORDS.get(args[0])
        if chosen is None or len(args) > 1:
            return Command("language", langs)
        return Command("language", langs, language=chosen)
    if kind == "receipt":
        code = "".join(args)
        return Command("receipt", langs, receipt=code[:40] or None)
    if kind == "harvest":
        return _harvest(args, langs)
    if args:
        return Command("unknown", langs)
    return Command(kind, langs)


def _int(word: str) -> int | None:
    if not word.isascii() or not word.isdigit() or len(word) > 18:
        return None
    return int(word)


def kilograms_to_grams(word: str) -> int | None:
    """``250``, ``250.5`` or ``250,5`` kg as grams; None unless 1 g to 1,000 t in whole grams."""
    word = word.removesuffix("KG")
    if not word.isascii() or not NUMBER.fullmatch(word) or len(word) > 16:
        return None
    try:
        grams = Decimal(word.replace(",", ".")) * 1000
    except InvalidOperation:
        return None
    if grams != grams.to_integral_value() or not 1 <= grams <= MAX_GRAMS:
        return None
    return int(grams)


def _harvest(args: list[str], langs: tuple[Lang, ...]) -> Command:
    crop: int | None = None
    numbers: list[str] = []
    for word in args:
        if word == "KG":
            continue
        if word in CROP_WORDS:
            crop = CROP_WORDS[word]
            continue
        numbers.append(word)
    typed = tuple(numbers[:3])
    if len(numbers) < 3 or len(numbers) > 4:
        return Command("harvest", langs, problem="usage", typed=typed)
    code, kg, grade_word = numbers[:3]
    if not code.isascii() or not code.isdigit() or len(code) > 12:
        return Command("harvest", langs, problem="usage", typed=typed)
    grams = kilograms_to_grams(kg)
    if grams is None:
        return Command("harvest", langs, problem="bad_kg", typed=typed)
    grade = _int(grade_word)
    if grade is None or grade > MAX_GRADE:
        return Command("harvest", langs, problem="bad_grade", typed=typed)
    pin = numbers[3] if len(numbers) == 4 else None
    if pin is None or not PIN.fullmatch(pin):
        return Command("harvest", langs, problem="need_pin", typed=typed)
    return Command(
        "harvest",
        langs,
        harvest=Harvest(farmer_code=code, grams=grams, grade=grade, crop=crop, pin=pin),
        typed=typed,
    )

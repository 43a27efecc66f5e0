"""Hypothesis fuzz of the command parser, the SMS conversation and the USSD state machine:
no exception escapes, and every reply is a valid message (encoding, length, language)."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sms_fakes import PARTIES, PIN, RECEIPT, FakeBackend

from konbit.sms import encoding
from konbit.sms.conversation import MAX_REPLY_PARTS, reply_language, respond
from konbit.sms.grammar import KEYWORDS, LANGUAGE_WORDS, parse
from konbit.sms.messages import CATALOGUE
from konbit.sms.ussd import SCREEN_MAX, MemoryStore, UssdMachine, valid_screen

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None
)
KINDS = {
    "empty", "unknown", "help", "lots", "lot", "payments", "orders", "code", "language",
    "receipt", "harvest",
}  # fmt: skip

WORDS = [
    *KEYWORDS, *LANGUAGE_WORDS, "MANGO", "ZABOKA", "KG", "MY", "MES", "#12", "Rekòt", "récolte",
    "LÒ", "lo", "Peman", "10019", "10024", "250", "250,5", "250.5", "2", PIN, RECEIPT, "0", "-1",
    "99999999999999999999", "1e3", "٣", "²", "ǅ", "😀", "€", "\u00a0",
]  # fmt: skip
COMMANDISH = st.lists(st.sampled_from(WORDS) | st.text(max_size=8), min_size=0, max_size=7).map(
    " ".join
)
ANY_TEXT = (
    st.text(max_size=600) | COMMANDISH | st.binary(max_size=50).map(lambda b: b.decode("latin-1"))
)


def catalogue_prefix(key: str, lang: str) -> str:
    text = CATALOGUE[key][lang]  # type: ignore[index]
    return text.split("{", 1)[0]


@FUZZ
@given(text=ANY_TEXT)
def test_parser_never_raises(text: str) -> None:
    command = parse(text)
    assert command.kind in KINDS
    if command.kind == "lot":
        assert command.lot_id is not None and command.lot_id >= 1
    if command.harvest is not None:
        assert 1 <= command.harvest.grams <= 10**9 and 0 <= command.harvest.grade <= 99


@FUZZ
@given(
    text=ANY_TEXT,
    who=st.sampled_from(sorted(PARTIES)),
    outcome=st.sampled_from(["recorded", "pending", "refused", "unavailable"]),
)
def test_every_sms_reply_is_a_valid_message(text: str, who: str, outcome: str) -> None:
    party = PARTIES[who]
    backend = FakeBackend(outcome=outcome)
    reply = respond(text, party, backend, key="fuzz")
    assert reply.text and reply.key in CATALOGUE
    split = encoding.segment(reply.text)
    assert "".join(split.parts) == reply.text
    assert 1 <= split.count <= MAX_REPLY_PARTS
    single, per_part = encoding.LIMITS[split.encoding]
    for part in split.parts:
        assert encoding.length(part, split.encoding) <= (single if split.count == 1 else per_part)
    if split.encoding is encoding.Encoding.GSM7:
        assert encoding.is_gsm7(reply.text)
    # Language: the profile's, the keyword's, or Kreyòl; a language change answers in the new one.
    command = parse(text)
    expected = command.language if reply.key == "language_set" else reply_language(party, command)
    assert reply.lang == expected
    assert reply.text.startswith(catalogue_prefix(reply.key, reply.lang))


INPUT = (
    st.sampled_from(
        [
            "",
            "0",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "9",
            "10019",
            "10024",
            "250",
            "99",
            "100",
            PIN,
            "1111",
            RECEIPT.replace("-", ""),
            "4654321",
        ]
    )
    | st.text(alphabet=string.digits + "#*", max_size=12)
    | st.text(max_size=20)
)


@FUZZ
@given(
    who=st.sampled_from(sorted(PARTIES)),
    dials=st.lists(st.lists(INPUT, max_size=10), min_size=1, max_size=4),
    outcome=st.sampled_from(["recorded", "pending", "refused", "unavailable"]),
    lots=st.integers(min_value=0, max_value=30),
)
# Found by this test: "¹" is a digit to str.isdigit, not to int().
@example(who=sorted(PARTIES)[0], dials=[["1", "¹"], ["¹"]], outcome="recorded", lots=3)
def test_every_ussd_screen_is_valid(
    who: str, dials: list[list[str]], outcome: str, lots: int
) -> None:
    party = PARTIES[who]
    backend = FakeBackend(outcome=outcome, lot_count=lots, payment_count=lots % 7)
    machine = UssdMachine(backend, MemoryStore(), resume_seconds=300)
    now = 1_800_000_000.0
    for n, inputs in enumerate(dials):  # each dial may be dropped by the network mid-way
        session = f"s{n}"
        text = ""
        for i, value in enumerate([None, *inputs]):
            if value is not None:
                text = value if i == 1 else f"{text}*{value}"
            now += 5
            reply = machine.handle(session, party.phone, text, party, now=now)
            assert valid_screen(reply), repr(reply)
            assert len(reply) <= SCREEN_MAX
            # The same request again (a network retry) gets the same screen.
            assert machine.handle(session, party.phone, text, party, now=now) == reply
            if reply.startswith("END "):
                break


def test_ussd_resume_offer_only_within_the_window() -> None:
    party = PARTIES["agent_ht"]
    backend = FakeBackend()
    machine = UssdMachine(backend, MemoryStore(), resume_seconds=300)
    for text in ("", "1", "1*10019"):
        machine.handle("a", party.phone, text, party, now=1000.0)
    assert machine.handle("b", party.phone, "", party, now=1100.0).startswith("CON Ou te kite")
    assert machine.handle("b", party.phone, "1", party, now=1101.0).startswith(
        "CON Kiltivatè: Jan Pyè (10019)"
    )
    for text in ("", "1", "1*10019"):
        machine.handle("c", party.phone, text, party, now=2000.0)
    assert machine.handle("d", party.phone, "", party, now=2400.0).startswith("CON Konbit\n")

"""Calldata put together from the items' own encodings is what encoding the whole gives
(konbit.chain.contracts.FunctionCodec.encode_items: recordLots from recordLot's)."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from konbit.chain.contracts import function_codec

address = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
word = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
lot = st.tuples(
    address,
    st.integers(0, 2**16 - 1),
    st.integers(0, 2**40 - 1),
    st.integers(0, 255),
    st.integers(0, 2**64 - 1),
    st.binary(min_size=5, max_size=5).map(lambda b: "0x" + b.hex()),
    word,
    word,
).map(list)


@settings(max_examples=60, deadline=None)
@given(st.lists(lot, min_size=1, max_size=12))
def test_record_lots_from_each_record_lot_equals_encoding_the_batch(lots: list[list]) -> None:
    one, many = (
        function_codec("Traceability", "recordLot"),
        function_codec("Traceability", "recordLots"),
    )
    items = [one.encode(lot) for lot in lots]
    assert many.encode_items(items) == many.encode(lots)


def test_only_a_function_of_one_array_can_be_put_together() -> None:
    with pytest.raises(ValueError, match="one array"):
        function_codec("Traceability", "recordLot").encode_items(["0x" + secrets.token_hex(36)])
    with pytest.raises(ValueError, match="one array"):
        function_codec("Traceability", "splitLot").encode_items([])

"""No personal data on chain: places are areas of at most 5 geohash characters (the ABI's
bytes5 refuses anything finer, even in hand-made calldata), and the exact plot is only a
salted commitment that a buyer given the plot and the salt can check."""

import brownie
import pytest
from brownie import chain, web3
from brownie.test import given
from conftest import EVIDENCE, GEO, MANGO, consignment, funded_order, lot_input, record
from eth_utils import keccak
from hypothesis import settings
from hypothesis import strategies as st

GEOHASH_CHARS = "0123456789bcdefghjkmnpqrstuvwxyz"


def _with_word(calldata: str, index: int, word: bytes) -> str:
    """``calldata`` (0x, selector + 32-byte words) with word ``index`` replaced."""
    raw = bytes.fromhex(calldata[2:])
    start = 4 + 32 * index
    return "0x" + (raw[:start] + word.ljust(32, b"\0") + raw[start + 32 :]).hex()


def _refused(sender, to, data):
    with brownie.reverts():
        sender.transfer(to, 0, data=data, gas_limit=1_000_000)


@settings(max_examples=10, deadline=None)
@given(fine=st.text(alphabet=GEOHASH_CHARS, min_size=6, max_size=12))
def test_record_lot_refuses_a_fine_plot_in_raw_calldata(system, fine):
    """Word 5 of recordLot(LotInput) is the plot's area: more than 5 characters reverts."""
    s = system
    data = s.trace.recordLot.encode_input(lot_input(s.farmer, 1_000))
    assert _with_word(data, 5, GEO_BYTES) == data  # the word we replace is the area
    _refused(s.coop, s.trace, _with_word(data, 5, fine.encode()))
    assert s.trace.nextLotId() == 1  # nothing was recorded


GEO_BYTES = bytes.fromhex(GEO[2:])


def test_custody_and_jobs_refuse_fine_places(system):
    s = system
    oid = funded_order(s)
    cid = consignment(s, oid, record(s, [(s.farmer, 100_000)]))
    s.escrow.markShipped(oid, cid, {"from": s.coop})
    fine = b"d7ns5qzk"
    hand_over = s.trace.handOver.encode_input(cid, s.carrier, 0, GEO, EVIDENCE)
    _refused(s.coop, s.trace, _with_word(hand_over, 3, fine))
    post = s.logistics.postJob.encode_input(cid, GEO, GEO, chain.time() + 86_400, 1)
    _refused(s.coop, s.logistics, _with_word(post, 1, fine))
    _refused(s.coop, s.logistics, _with_word(post, 2, fine))
    # The same calls with the coarse area go through.
    s.trace.handOver(cid, s.carrier, 0, GEO, EVIDENCE, {"from": s.coop})
    s.logistics.postJob(cid, GEO, GEO, chain.time() + 86_400, 1, {"from": s.coop})


@pytest.mark.parametrize("plot", ["d7ns5qzkp8xy", "d7q8c"])
def test_plot_commitment_is_checkable(system, plot):
    """A buyer given the plot and the salt recomputes the commitment in the lot's event."""
    s = system
    salt = bytes(range(32))
    commitment = "0x" + keccak(salt + plot.encode()).hex()
    area = "0x" + plot[:5].encode().hex()
    lot = (s.farmer, MANGO, 1_000, 3, chain.time(), area, commitment, EVIDENCE)
    ev = s.trace.recordLot(lot, {"from": s.coop}).events["LotRecorded"]
    assert _hex(ev["plotCommitment"]) == commitment
    assert _hex(ev["plotGeohash"]) == area and len(area) == 2 + 2 * 5
    assert "0x" + web3.keccak(salt + plot.encode()).hex().removeprefix("0x") == commitment


def _hex(value) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()

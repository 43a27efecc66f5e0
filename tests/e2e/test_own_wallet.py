"""An organisation that keeps its own wallet signs its transactions itself and posts them."""

from __future__ import annotations

import time
from typing import Any

from eth_account import Account
from sqlmodel import Session

from konbit.mirror.models import Organisation

USD = 10**6


def test_own_wallet_submits_signed_transactions(api: Any) -> None:
    wallet = Account.create()
    runtime = api.runtime
    runtime.rpc.call("anvil_setBalance", wallet.address, hex(10**18))
    op = api.client(api.operator_key)
    reply = op.post(
        "/operator/organisations",
        params={"wait": "true"},
        json={
            "name": "Self-custody exporter",
            "role": "exporter",
            "address": wallet.address.lower(),
        },
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["organisation"] == {
        "address": wallet.address,
        "name": "Self-custody exporter",
        "role": "exporter",
        "custodial": False,
    }
    key = op.post(f"/operator/organisations/{wallet.address}/keys", json={}).json()["key"]
    exporter = api.client(key)

    # The backend holds no key for it: custodial writes are refused with directions.
    refused = exporter.post(
        "/exporter/orders",
        json={
            "cooperative": wallet.address,
            "crop": 1,
            "grams": 1,
            "price_per_kg": 1,
            "delivery_deadline": 2**40,
        },
    )
    assert refused.status_code == 409 and "/transactions/raw" in refused.json()["detail"]

    # It signs a real call itself (the local faucet) and posts the raw bytes.
    coin = runtime.contracts().stablecoin
    tx = coin.functions.faucet(wallet.address, 7 * USD).build_transaction(
        {
            "from": wallet.address,
            "nonce": 0,
            "gas": 200_000,
            "chainId": runtime.chain_id,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
        }
    )
    raw = "0x" + bytes(wallet.sign_transaction(tx).raw_transaction).hex()
    posted = exporter.post("/transactions/raw", json={"raw": raw})
    assert posted.status_code == 202, posted.text
    tx_id = posted.json()["id"]
    deadline = time.monotonic() + 30
    status = posted.json()["status"]
    while status != "mined" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = api.client(None).get(f"/transactions/{tx_id}").json()["status"]
    assert status == "mined"
    assert coin.functions.balanceOf(wallet.address).call() == 7 * USD

    # Someone else's signature is refused, and so is garbage.
    other = Account.create()
    tx["from"] = other.address
    foreign = "0x" + bytes(other.sign_transaction(tx).raw_transaction).hex()
    assert exporter.post("/transactions/raw", json={"raw": foreign}).status_code == 403
    assert exporter.post("/transactions/raw", json={"raw": "0xdeadbeef"}).status_code == 422

    # Its registration was mirrored like any other organisation's.
    with Session(runtime.engine) as session:
        assert session.get(Organisation, wallet.address) is not None

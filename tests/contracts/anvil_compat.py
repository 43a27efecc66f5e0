"""Work around a race between eth-brownie 1.22 and Anvil.

Anvil (automine) can report a sender's new nonce a moment before the mined transaction and its
receipt are queryable; brownie then marks the transaction "dropped without known replacement".
`patch_receipt_race()` makes brownie's web3 retry those two lookups briefly. Call it after
brownie has connected (the eth module is re-created on connect); it is idempotent.
"""

import time

from web3.exceptions import TransactionNotFound


def _retrying(fn):
    def wrapper(*args, **kwargs):
        for _ in range(100):
            try:
                return fn(*args, **kwargs)
            except TransactionNotFound:
                time.sleep(0.01)
        return fn(*args, **kwargs)

    return wrapper


def patch_receipt_race():
    from brownie.network.web3 import web3

    eth = web3.eth
    if getattr(eth, "_konbit_retry", False):
        return
    eth.get_transaction = _retrying(eth.get_transaction)
    eth.get_transaction_receipt = _retrying(eth.get_transaction_receipt)
    eth._konbit_retry = True

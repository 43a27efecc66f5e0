"""The deployed Konbit contracts as brownie objects, by name, for `brownie console`.

    $ brownie console
    >>> from scripts.console import konbit
    >>> k = konbit()                 # reads .konbit/deployments/ for the connected chain
    >>> k.SaleEscrow.getOrder(1)
    >>> k.TestStablecoin.balanceOf(k.addresses["SaleEscrow"])

`brownie run scripts/console.py` prints the address book instead. Set KONBIT_DATA_DIR when
the deployment lives elsewhere than `.konbit/`.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from brownie import Contract, web3

from konbit.chain.contracts import AddressBook, load_artifact
from konbit.settings import Settings


def konbit() -> Any:
    """A namespace with one brownie ``Contract`` per deployed Konbit contract."""
    settings = Settings.load()
    genesis = "0x" + bytes(web3.eth.get_block(0)["hash"]).hex()
    book = AddressBook.load(settings.data_dir, web3.eth.chain_id, genesis)
    if book is None:
        raise SystemExit(
            f"nothing deployed on chain {web3.eth.chain_id} under {settings.data_dir}:"
            " run `brownie run scripts/deploy.py` first"
        )
    contracts = {
        name: Contract.from_abi(name, address, load_artifact(name).abi)
        for name, address in book.addresses.items()
    }
    return SimpleNamespace(addresses=dict(book.addresses), **contracts)


def main() -> None:
    k = konbit()
    for name, address in k.addresses.items():
        print(f"{name:16s} {address}")

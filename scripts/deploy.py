"""brownie run scripts/deploy.py [--network NAME]: the Konbit deploy routine on brownie's network.

It is the same routine as ``konbit deploy`` (``konbit.services.deploy.deploy``), pointed at
the node brownie is connected to; the operator key and the outbox live in the backend's
database (``KONBIT_DATABASE_URL``, default SQLite under ``.konbit/``).
"""

from brownie import web3

from konbit.db.migrate import upgrade
from konbit.runtime import Runtime
from konbit.services.deploy import deploy
from konbit.settings import Settings


def main() -> None:
    settings = Settings.load(rpc_url=web3.provider.endpoint_uri)
    runtime = Runtime(settings)
    try:
        upgrade(runtime.engine)
        book = deploy(runtime)
        for name, address in book.addresses.items():
            print(f"{name:16s} {address}")
    finally:
        runtime.close()

"""Outbox throughput against raw pre-signed ``eth_sendRawTransaction``, same Anvil, same run.

    .venv/bin/python bench/outbox_throughput.py [--txs 400] [--senders 20]

Raw: the same kind of transaction (TestStablecoin.faucet) signed beforehand with
eth-account and sent serially from one client, then every receipt fetched. Outbox: the
same number submitted to the outbox (SQLite, and PostgreSQL when a server is at hand),
then drained by one worker: vault decryption, gas estimation, nonce allocation, signing,
sending, receipts and every state change committed. Prints tx/s and outbox/raw ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account
from sqlmodel import Session, select

from konbit.chain.contracts import AddressBook, KonbitContracts, load_artifact
from konbit.chain.local import LocalChain, free_port
from konbit.db.migrate import upgrade
from konbit.outbox.models import OutboxTx, TxStatus
from konbit.outbox.service import submit
from konbit.paths import PROJECT_ROOT
from konbit.runtime import OPERATOR_KIND, Runtime
from konbit.settings import Settings

ETH = 10**18


def raw_baseline(w3, coin, n: int, senders: int) -> float:  # type: ignore[no-untyped-def]
    accounts = [Account.create() for _ in range(senders)]
    for acct in accounts:
        w3.provider.make_request("anvil_setBalance", [acct.address, hex(ETH)])
    fees = {"maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}
    chain_id = w3.eth.chain_id
    raws = []
    for i in range(n):
        acct = accounts[i % senders]
        tx = coin.functions.faucet(acct.address, 1).build_transaction(
            {
                "from": acct.address,
                "nonce": i // senders,
                "gas": 100_000,
                "chainId": chain_id,
                **fees,
            }
        )
        raws.append(acct.sign_transaction(tx))
    start = time.perf_counter()
    hashes = [w3.eth.send_raw_transaction(s.raw_transaction) for s in raws]
    for h in hashes:
        assert w3.eth.get_transaction_receipt(h)["status"] == 1
    return n / (time.perf_counter() - start)


def outbox_run(chain: LocalChain, database_url: str, n: int, senders: int) -> float:
    data_dir = Path(tempfile.mkdtemp(prefix="konbit-bench-"))
    settings = Settings.load(
        env_file=None, environ={}, data_dir=data_dir, rpc_url=chain.url, database_url=database_url
    )
    rt = Runtime(settings)
    upgrade(rt.engine)
    operator = rt.vault.create_account(OPERATOR_KIND)
    rt.w3.provider.make_request("anvil_setBalance", [operator, hex(10**6 * ETH)])
    with Session(rt.engine) as s:
        submit(s, key="coin", sender=operator, data=load_artifact("TestStablecoin").bytecode)
    worker = rt.worker()
    worker.drain()
    with Session(rt.engine) as s:
        coin_address = s.exec(select(OutboxTx.contract_address)).one()
    contracts = KonbitContracts(rt.w3, AddressBook(rt.chain_id, {"TestStablecoin": coin_address}))
    accounts = [rt.vault.create_account("cooperative") for _ in range(senders)]
    for a in accounts:
        rt.w3.provider.make_request("anvil_setBalance", [a, hex(ETH)])
    start = time.perf_counter()
    with Session(rt.engine) as s:
        for i in range(n):
            a = accounts[i % senders]
            submit(
                s,
                key=f"b{i}",
                sender=a,
                contracts=contracts,
                contract="TestStablecoin",
                function="faucet",
                args=[a, 1],
            )
    worker.drain(timeout=600)
    elapsed = time.perf_counter() - start
    with Session(rt.engine) as s:
        mined = len(s.exec(select(OutboxTx.id).where(OutboxTx.status == TxStatus.MINED)).all())
    assert mined == n + 1, f"only {mined - 1} of {n} mined"
    worker.close()
    rt.close()
    return n / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txs", type=int, default=400)
    parser.add_argument("--senders", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="konbit-bench-chain-"))
    pg_dir = None
    with LocalChain(tmp, port=free_port()) as chain:
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(chain.url))
        deployer = w3.eth.accounts[0]
        art = load_artifact("TestStablecoin")
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
            .constructor()
            .transact({"from": deployer})
        )
        coin = w3.eth.contract(address=receipt["contractAddress"], abi=art.abi)
        raw = raw_baseline(w3, coin, args.txs, args.senders)
        print(f"raw eth_sendRawTransaction (pre-signed): {raw:8.1f} tx/s")
        results = {
            "sqlite": outbox_run(chain, f"sqlite:///{tmp / 'bench.db'}", args.txs, args.senders)
        }
        pg_url = os.environ.get("KONBIT_TEST_POSTGRES_URL")
        if not pg_url:
            pg_dir = Path("/tmp") / f"konbit-bench-pg-{os.getpid()}"  # postgres must reach it
            started = subprocess.run(
                [
                    "bash",
                    str(PROJECT_ROOT / "scripts" / "throwaway-postgres.sh"),
                    "start",
                    str(pg_dir),
                    str(free_port()),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            pg_url = started.stdout.strip() if started.returncode == 0 else None
        if pg_url:
            results["postgresql"] = outbox_run(chain, pg_url, args.txs, args.senders)
        for kind, rate in results.items():
            print(
                f"outbox ({kind:10s}):                   {rate:8.1f} tx/s   ratio {rate / raw:.2f}"
            )
    if pg_dir is not None:
        subprocess.run(
            ["bash", str(PROJECT_ROOT / "scripts" / "throwaway-postgres.sh"), "stop", str(pg_dir)],
            check=False,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The transaction outbox against a real Anvil, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from web3 import Web3

from konbit.chain.contracts import AddressBook, KonbitContracts, load_artifact
from konbit.chain.local import LocalChain
from konbit.db.migrate import upgrade
from konbit.outbox.models import OutboxTx, TxStatus
from konbit.outbox.service import IdempotencyConflict, OutboxError, submit
from konbit.outbox.wake import Nudge, WakeListener
from konbit.runtime import OPERATOR_KIND, Runtime
from konbit.settings import Settings

ONE_ETH = 10**18


@dataclass
class Env:
    settings: Settings
    runtime: Runtime
    contracts: KonbitContracts

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    @property
    def w3(self) -> Web3:
        return self.runtime.w3

    def new_senders(self, n: int, *, fund: bool = True) -> list[str]:
        senders = [self.runtime.vault.create_account("cooperative") for _ in range(n)]
        if fund:
            for s in senders:
                self.w3.provider.make_request("anvil_setBalance", [s, hex(ONE_ETH)])  # type: ignore[arg-type]
        return senders

    def rows(self, *keys: str) -> list[OutboxTx]:
        with Session(self.engine) as s:
            q = select(OutboxTx).order_by(col(OutboxTx.id))
            if keys:
                q = q.where(col(OutboxTx.idempotency_key).in_(keys))
            return list(s.exec(q).all())


@pytest.fixture
def env(anvil: LocalChain, database_url: str, tmp_path: Path) -> Iterator[Env]:
    settings = Settings.load(
        env_file=None,
        environ={},
        data_dir=tmp_path,
        rpc_url=anvil.url,
        database_url=database_url,
        gas_topup_wei=ONE_ETH // 10,
    )
    runtime = Runtime(settings)
    upgrade(runtime.engine)
    operator = runtime.vault.create_account(OPERATOR_KIND)
    runtime.w3.provider.make_request("anvil_setBalance", [operator, hex(1000 * ONE_ETH)])  # type: ignore[arg-type]
    # The test stablecoin, deployed through the outbox itself (contract creation).
    artifact = load_artifact("TestStablecoin")
    with Session(runtime.engine) as s:
        submit(s, key="deploy-coin", sender=operator, data=artifact.bytecode)
    worker = runtime.worker()
    worker.drain(timeout=60)
    worker.close()
    (deployed,) = [r for r in Env(settings, runtime, None).rows("deploy-coin")]  # type: ignore[arg-type]
    assert deployed.status == TxStatus.MINED and deployed.contract_address
    book = AddressBook(runtime.chain_id, {"TestStablecoin": deployed.contract_address})
    book.save(tmp_path)
    yield Env(settings, runtime, KonbitContracts(runtime.w3, book))
    runtime.close()


def _faucet(env: Env, key: str, sender: str, to: str, amount: int) -> OutboxTx:
    with Session(env.engine) as s:
        row, _ = submit(
            s,
            key=key,
            sender=sender,
            contracts=env.contracts,
            contract="TestStablecoin",
            function="faucet",
            args=[to, amount],
        )
        return row


def test_200_concurrent_submissions_from_20_senders(env: Env) -> None:
    senders = env.new_senders(20)
    sink = env.runtime.vault.create_account("farmer")
    worker = env.runtime.worker(threads=8)
    stop = threading.Event()
    loop = threading.Thread(target=worker.run_forever, args=(stop, 0.01))
    loop.start()
    try:

        def submit_all(i: int, sender: str) -> None:
            for j in range(10):
                _faucet(env, f"c-{i}-{j}", sender, sink, 1 + j)

        threads = [threading.Thread(target=submit_all, args=(i, s)) for i, s in enumerate(senders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        worker.drain(timeout=120)
    finally:
        stop.set()
        loop.join()
        worker.close()

    rows = [r for r in env.rows() if r.idempotency_key.startswith("c-")]
    assert len(rows) == 200
    assert {r.status for r in rows} == {TxStatus.MINED.value}
    assert len({r.tx_hash for r in rows}) == 200
    by_sender: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        assert r.nonce is not None
        by_sender[r.sender].append(r.nonce)
    for sender, nonces in by_sender.items():
        assert sorted(nonces) == list(range(10)), f"gap or duplicate for {sender}"
        assert env.w3.eth.get_transaction_count(sender) == 10  # type: ignore[arg-type]
    coin = env.contracts.stablecoin
    assert coin.functions.balanceOf(sink).call() == 20 * sum(range(1, 11))


def test_same_idempotency_key_gives_one_transaction_and_the_same_answer(env: Env) -> None:
    (sender,) = env.new_senders(1)
    first = _faucet(env, "once", sender, sender, 5)
    again = _faucet(env, "once", sender, sender, 5)
    assert first.id == again.id
    with pytest.raises(IdempotencyConflict):
        _faucet(env, "once", sender, sender, 6)
    worker = env.runtime.worker()
    worker.drain()
    worker.close()
    third = _faucet(env, "once", sender, sender, 5)
    assert third.id == first.id and third.status == TxStatus.MINED and third.tx_hash
    assert len(env.rows("once")) == 1
    assert env.w3.eth.get_transaction_count(sender) == 1  # type: ignore[arg-type]
    assert env.contracts.stablecoin.functions.balanceOf(sender).call() == 5


def test_revert_is_recorded_with_the_custom_error(env: Env) -> None:
    (sender,) = env.new_senders(1)
    too_much = 10**30
    _faucet(env, "too-much", sender, sender, too_much)
    _faucet(env, "fine", sender, sender, 1)
    worker = env.runtime.worker()
    worker.drain()
    worker.close()
    failed, fine = env.rows("too-much", "fine")
    assert failed.status == TxStatus.FAILED
    assert failed.error_name == "FaucetLimitExceeded"
    assert json.loads(failed.error_args_json or "{}") == {
        "requested": too_much,
        "max": 1_000_000 * 10**6,
    }
    assert failed.nonce is None  # refused before signing: no nonce used
    assert fine.status == TxStatus.MINED and fine.nonce == 0


def test_bad_arguments_are_refused_at_submit(env: Env) -> None:
    (sender,) = env.new_senders(1, fund=False)
    with pytest.raises(OutboxError, match="faucet"):
        _faucet(env, "bad", sender, "not-an-address", 1)
    assert env.rows("bad") == []


def test_nonce_used_outside_the_outbox_is_resynced(env: Env) -> None:
    (sender,) = env.new_senders(1)
    worker = env.runtime.worker()
    _faucet(env, "r1", sender, sender, 1)
    worker.drain()
    # Someone uses the key directly (e.g. an exported keystore): nonce 1 is taken.
    signed = env.runtime.vault.sign_transaction(
        sender,
        {
            "chainId": env.runtime.chain_id,
            "nonce": 1,
            "to": sender,
            "value": 0,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "type": 2,
        },
    )
    env.w3.eth.wait_for_transaction_receipt(env.w3.eth.send_raw_transaction(signed.raw_transaction))
    _faucet(env, "r2", sender, sender, 2)
    worker.drain()
    worker.close()
    (r2,) = env.rows("r2")
    assert r2.status == TxStatus.MINED and r2.nonce == 2
    assert env.contracts.stablecoin.functions.balanceOf(sender).call() == 3


def test_unfunded_custodial_sender_is_topped_up_by_the_operator(env: Env) -> None:
    (sender,) = env.new_senders(1, fund=False)
    assert env.w3.eth.get_balance(sender) == 0  # type: ignore[arg-type]
    _faucet(env, "needs-gas", sender, sender, 7)
    worker = env.runtime.worker()
    worker.drain()
    worker.close()
    (row,) = env.rows("needs-gas")
    assert row.status == TxStatus.MINED
    topups = [r for r in env.rows() if r.function == "gas-topup" and r.to_address == sender]
    assert len(topups) == 1 and topups[0].status == TxStatus.MINED


@pytest.mark.parametrize("step", ["signed", "broadcast", "sent"])
def test_worker_killed_mid_step_then_restarted_mines_each_tx_once(env: Env, step: str) -> None:
    senders = env.new_senders(3)
    sink = env.runtime.vault.create_account("farmer")
    for i, sender in enumerate(senders):
        for j in range(4):
            _faucet(env, f"k-{step}-{i}-{j}", sender, sink, 1)
    run_env = {
        **os.environ,
        "KONBIT_DATA_DIR": str(env.settings.data_dir),
        "KONBIT_RPC_URL": env.settings.effective_rpc_url,
        "KONBIT_DATABASE_URL": env.settings.effective_database_url,
    }
    worker_cmd = [sys.executable, "-m", "konbit.cli", "worker", "--drain", "--timeout", "60"]
    crashed = subprocess.run(
        worker_cmd,
        env={**run_env, "KONBIT_OUTBOX_CRASH_AT": f"{step}:5"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == 75, crashed.stderr  # died at the hook, mid-batch
    statuses = {r.status for r in env.rows() if r.idempotency_key.startswith(f"k-{step}")}
    assert statuses & {TxStatus.QUEUED.value, TxStatus.SIGNED.value, TxStatus.SENT.value}

    finished = subprocess.run(worker_cmd, env=run_env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    rows = [r for r in env.rows() if r.idempotency_key.startswith(f"k-{step}")]
    assert {r.status for r in rows} == {TxStatus.MINED.value}
    for sender in senders:
        assert env.w3.eth.get_transaction_count(sender) == 4  # type: ignore[arg-type]
    assert env.contracts.stablecoin.functions.balanceOf(sink).call() == 12  # exactly once each


class _MinesBeforeTheReceipts:
    """The worker's JSON-RPC client, on the real node, with one block mined just before
    the first receipt lookup: the moment a crashed worker's last batch, already in the
    node's pool, gets mined while its successor reconciles."""

    def __init__(self, rpc: Any) -> None:
        self._rpc = rpc
        self.mined = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rpc, name)

    def batch(self, calls: Any) -> Any:
        if not self.mined and calls and calls[0][0] == "eth_getTransactionReceipt":
            self.mined = True
            self._rpc.call("evm_mine")
        return self._rpc.batch(calls)


def test_transactions_mined_while_the_restarted_worker_reconciles_get_no_filler(
    env: Env,
) -> None:
    """Regression: a row mined between the replay's nonce read and its receipt read left
    a "gap" at its nonce; the filler signed there was refused, queued again, and mined
    as a fifth transaction of a sender that had four writes."""
    (sender,) = env.new_senders(1)
    sink = env.runtime.vault.create_account("farmer")
    for j in range(4):
        _faucet(env, f"mid-{j}", sender, sink, 1)

    class Crashed(Exception):
        pass

    def crash(step: str) -> None:
        if step == "signed":
            raise Crashed

    first = env.runtime.worker(crash_hook=crash)
    with pytest.raises(Crashed):
        first.run_once()  # signed and committed, then "died" before sending
    first.close()
    rows = env.rows(*(f"mid-{j}" for j in range(4)))
    assert {r.status for r in rows} == {TxStatus.SIGNED.value}
    env.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        for row in rows[:2]:  # half its batch reached the node: those wait in the pool
            env.w3.provider.make_request("eth_sendRawTransaction", [row.raw_tx])  # type: ignore[arg-type]
        second = env.runtime.worker()
        second.rpc = _MinesBeforeTheReceipts(second.rpc)  # type: ignore[assignment]
        report = second.reconcile()
        assert second.rpc.mined  # type: ignore[attr-defined]
    finally:
        env.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    assert report.fillers == 0
    second.drain()
    second.close()
    assert {r.status for r in env.rows(*(f"mid-{j}" for j in range(4)))} == {TxStatus.MINED.value}
    assert not [r for r in env.rows() if r.sender == sender and r.function == "nonce-filler"]
    assert env.w3.eth.get_transaction_count(sender) == 4  # type: ignore[arg-type]
    assert env.contracts.stablecoin.functions.balanceOf(sink).call() == 4


def test_an_idle_worker_signs_a_nudged_write_at_once_not_at_its_next_poll(env: Env) -> None:
    """konbit.outbox.wake: a web worker nudges the outbox once a write is committed. With
    a poll of a minute, only the nudge can explain a row signed within seconds."""
    (sender,) = env.new_senders(1)
    url = env.settings.effective_database_url
    wake = WakeListener(url)
    assert wake.listening
    worker = env.runtime.worker()
    stop = threading.Event()
    finished = threading.Event()
    loop = threading.Thread(
        target=worker.run_forever,
        args=(stop, 60.0),
        kwargs={"wake": wake, "on_finished": finished.set},
    )
    _faucet(env, "before-start", sender, sender, 1)  # the first pass mines it, then idles
    loop.start()
    try:
        assert finished.wait(30)
        (first,) = env.rows("before-start")
        assert first.status == TxStatus.MINED
        time.sleep(1.0)  # the pass after it finds nothing: the worker waits its minute
        _faucet(env, "nudged", sender, sender, 2)
        time.sleep(1.0)
        (row,) = env.rows("nudged")
        assert row.status == TxStatus.QUEUED  # idle for a minute: nobody looked yet
        finished.clear()
        Nudge(url)()
        assert finished.wait(20)
        (row,) = env.rows("nudged")
        assert row.status == TxStatus.MINED
    finally:
        stop.set()
        Nudge(url)()  # ends the wait at once
        loop.join(timeout=30)
        worker.close()
        wake.close()
    assert not loop.is_alive()

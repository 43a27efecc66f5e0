"""The outbox as the chain's write-ahead log, on SQLite and PostgreSQL.

First the reconciliation itself, on the session's Anvil, with the lost blocks made by
``evm_snapshot`` / ``evm_revert`` (the chain keeps its genesis, its head goes back, the
receipts the outbox recorded are gone). Then the whole ``konbit run`` under load, killed
with SIGKILL three ways (its process group, the chain alone, the server alone), restarted,
every request replayed with its idempotency key, and every effect counted on chain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from chain_dumps import kept_through_block
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from web3 import Web3

from konbit.chain.contracts import (
    AddressBook,
    KonbitContracts,
    konbit_event_decoder,
    load_artifact,
)
from konbit.chain.local import LocalChain, free_port, probe, rpc_call
from konbit.cli import main as konbit_main
from konbit.db.engine import make_engine
from konbit.db.migrate import upgrade
from konbit.mirror.indexer import Mirror
from konbit.outbox.audit import audit
from konbit.outbox.models import PENDING, OutboxSender, OutboxTx, TxStatus
from konbit.outbox.service import submit
from konbit.outbox.worker import NONCE_FILLER, OutboxWorker
from konbit.runtime import OPERATOR_KIND, Runtime
from konbit.services.deploy import deploy
from konbit.settings import Settings

ONE_ETH = 10**18


# ---- reconciliation, in process --------------------------------------------------------


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

    def rpc(self, method: str, *params: Any) -> Any:
        return self.runtime.rpc.call(method, *params)

    def senders(self, n: int) -> list[str]:
        out = [self.runtime.vault.create_account("cooperative") for _ in range(n)]
        for s in out:
            self.rpc("anvil_setBalance", s, hex(ONE_ETH))
        return out

    def call(self, key: str, sender: str, function: str, *args: Any) -> OutboxTx:
        with Session(self.engine) as s:
            row, _ = submit(
                s,
                key=key,
                sender=sender,
                contracts=self.contracts,
                contract="TestStablecoin",
                function=function,
                args=list(args),
            )
            return row

    def rows(self, *keys: str) -> list[OutboxTx]:
        with Session(self.engine) as s:
            q = select(OutboxTx).order_by(col(OutboxTx.id))
            if keys:
                q = q.where(col(OutboxTx.idempotency_key).in_(keys))
            by_key = {r.idempotency_key: r for r in s.exec(q).all()}
        return [by_key[k] for k in keys] if keys else list(by_key.values())

    def balance(self, who: str) -> int:
        return int(self.contracts.stablecoin.functions.balanceOf(who).call())

    def worker(self, **options: Any) -> OutboxWorker:
        return self.runtime.worker(**options)

    def drain(self) -> None:
        worker = self.worker()
        try:
            worker.drain(timeout=60)
        finally:
            worker.close()

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def lose_blocks(self, snapshot: str) -> None:
        """The chain goes back to ``snapshot``: the blocks after it are gone."""
        assert self.rpc("evm_revert", snapshot) is True


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
    runtime.rpc.call("anvil_setBalance", operator, hex(1000 * ONE_ETH))
    with Session(runtime.engine) as s:
        submit(s, key="deploy-coin", sender=operator, data=load_artifact("TestStablecoin").bytecode)
    worker = runtime.worker()
    worker.drain(timeout=60)
    worker.close()
    with Session(runtime.engine) as s:
        coin = s.exec(select(OutboxTx).where(OutboxTx.idempotency_key == "deploy-coin")).one()
    assert coin.contract_address
    book = AddressBook(runtime.chain_id, {"TestStablecoin": coin.contract_address})
    book.save(tmp_path)
    yield Env(settings, runtime, KonbitContracts(runtime.w3, book))
    runtime.close()


def test_lost_blocks_are_sent_again_as_the_same_bytes_in_their_first_order(env: Env) -> None:
    minter, spender = env.senders(2)
    sink = env.runtime.vault.create_account("farmer")
    snapshot = env.snapshot()
    # Each transfer spends coins minted by the other sender just before: replayed out of
    # order, the transfers would revert.
    for i in range(4):
        env.call(f"mint-{i}", minter, "faucet", spender, 100)
        env.drain()
        env.call(f"pay-{i}", spender, "transfer", sink, 100)
        env.drain()
    keys = [k for i in range(4) for k in (f"mint-{i}", f"pay-{i}")]
    first = {r.idempotency_key: r for r in env.rows(*keys)}
    assert {r.status for r in first.values()} == {TxStatus.MINED.value}
    assert env.balance(sink) == 400

    env.lose_blocks(snapshot)
    assert env.balance(sink) == 0
    lost = audit(env.engine, env.runtime.rpc)
    assert len([m for m in lost.mismatches if "no receipt" in str(m)]) == 8
    assert any("no receipt" in str(m) and m.tx_id == first["pay-0"].id for m in lost.mismatches)

    worker = env.worker()
    try:
        report = worker.reconcile()
        assert (report.lost, report.resent, report.requeued) == (8, 8, 0)
        worker.drain(timeout=60)
    finally:
        worker.close()
    again = {r.idempotency_key: r for r in env.rows(*keys)}
    assert {r.status for r in again.values()} == {TxStatus.MINED.value}
    for key in keys:  # the same signed bytes: same hash, same nonce
        assert (again[key].tx_hash, again[key].nonce) == (first[key].tx_hash, first[key].nonce)
    assert env.balance(sink) == 400 and env.balance(spender) == 0  # exactly once each
    assert audit(env.engine, env.runtime.rpc).ok


def test_rows_sent_above_lost_blocks_do_not_wait_forever(env: Env) -> None:
    (sender,) = env.senders(1)
    worker = env.worker(chain_check_seconds=3600, receipt_timeout=0.05)
    try:
        snapshot = env.snapshot()
        for i in range(3):
            env.call(f"own-{i}", sender, "faucet", sender, 1)
        worker.drain(timeout=60)
        env.lose_blocks(snapshot)
        # More writes: signed above the lost nonces and sent; the node keeps them waiting.
        for i in range(3, 6):
            env.call(f"own-{i}", sender, "faucet", sender, 1)
        worker.run_once()
        assert [r.status for r in env.rows(*(f"own-{i}" for i in range(3, 6)))] == [
            TxStatus.SENT.value
        ] * 3
        found = [str(m) for m in audit(env.engine, env.runtime.rpc).mismatches]
        assert sum("no receipt" in m for m in found) == 3
        assert any("nonce gap" in m and "no row holds nonces 0..2" in m for m in found), found

        worker.request_reconcile()  # as the mirror does when it sees the head go back
        worker.drain(timeout=60)
    finally:
        worker.close()
    rows = env.rows(*(f"own-{i}" for i in range(6)))
    assert [r.status for r in rows] == [TxStatus.MINED.value] * 6
    assert [r.nonce for r in rows] == list(range(6))
    assert env.balance(sender) == 6
    assert int(env.rpc("eth_getTransactionCount", sender, "latest"), 16) == 6
    assert audit(env.engine, env.runtime.rpc).ok


def test_lost_rows_are_found_below_rows_recorded_after_the_loss(env: Env) -> None:
    """Another sender's writes mined after the loss take the lost blocks' heights: the
    lost rows are found all the same (every recorded block is compared, not the top)."""
    lost_sender, busy_sender = env.senders(2)
    snapshot = env.snapshot()
    for i in range(3):
        env.call(f"gone-{i}", lost_sender, "faucet", lost_sender, 1)
    env.drain()
    gone = env.rows(*(f"gone-{i}" for i in range(3)))
    env.lose_blocks(snapshot)
    worker = env.worker(chain_check_seconds=3600)
    try:
        for i in range(5):  # mined and recorded before any check sees the loss
            env.call(f"later-{i}", busy_sender, "faucet", busy_sender, 1)
            worker._process_sender(busy_sender, worker._fees())  # one pass, no check
        later = env.rows(*(f"later-{i}" for i in range(5)))
        assert {r.status for r in later} == {TxStatus.MINED.value}
        assert {r.block_number for r in gone} <= {r.block_number for r in later}
        report = worker.reconcile()
        assert (report.lost, report.resent) == (3, 3)
        worker.drain(timeout=60)
    finally:
        worker.close()
    assert {r.status for r in env.rows(*(f"gone-{i}" for i in range(3)))} == {"mined"}
    assert env.balance(lost_sender) == 3 and env.balance(busy_sender) == 5
    assert audit(env.engine, env.runtime.rpc).ok


def test_a_lost_nonce_taken_by_another_transaction_is_signed_again(env: Env) -> None:
    (sender,) = env.senders(1)
    env.call("before", sender, "faucet", sender, 1)
    env.drain()
    snapshot = env.snapshot()
    env.call("lost", sender, "faucet", sender, 10)
    env.call("after", sender, "faucet", sender, 100)
    env.drain()
    (lost,) = env.rows("lost")
    env.lose_blocks(snapshot)
    # Someone uses the key directly meanwhile: the lost row's nonce is taken.
    foreign = env.runtime.vault.sign_transaction(
        sender,
        {
            "chainId": env.runtime.chain_id,
            "nonce": lost.nonce,
            "to": sender,
            "value": 0,
            "gas": 21_000,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 10**9,
            "type": 2,
        },
    )
    env.w3.eth.wait_for_transaction_receipt(
        env.w3.eth.send_raw_transaction(foreign.raw_transaction)
    )
    worker = env.worker()
    try:
        report = worker.reconcile()
        assert report.requeued == 1
        worker.drain(timeout=60)
    finally:
        worker.close()
    lost_again, after = env.rows("lost", "after")
    assert lost_again.status == after.status == TxStatus.MINED.value
    assert after.nonce == lost.nonce + 1  # kept its bytes: still valid after the foreign one
    assert lost_again.nonce == lost.nonce + 2  # signed again, with a fresh nonce
    assert env.balance(sender) == 111
    assert audit(env.engine, env.runtime.rpc).ok


def test_a_nonce_gap_left_by_a_lost_foreign_transaction_is_filled(env: Env) -> None:
    (sender,) = env.senders(1)
    env.call("g0", sender, "faucet", sender, 1)
    env.drain()
    snapshot = env.snapshot()
    foreign = env.runtime.vault.sign_transaction(
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
    env.w3.eth.wait_for_transaction_receipt(
        env.w3.eth.send_raw_transaction(foreign.raw_transaction)
    )
    env.call("g2", sender, "faucet", sender, 10)
    env.drain()
    (g2,) = env.rows("g2")
    assert g2.nonce == 2
    env.lose_blocks(snapshot)  # the foreign transaction is lost with ours: nonce 1 is free
    worker = env.worker()
    try:
        report = worker.reconcile()
        assert report.fillers == 1
        worker.drain(timeout=60)
    finally:
        worker.close()
    (g2_again,) = env.rows("g2")
    assert g2_again.status == TxStatus.MINED.value and g2_again.tx_hash == g2.tx_hash
    fillers = [r for r in env.rows() if r.function == NONCE_FILLER and r.sender == sender]
    assert [(f.nonce, f.status) for f in fillers] == [(1, TxStatus.MINED.value)]
    assert env.balance(sender) == 11
    assert audit(env.engine, env.runtime.rpc).ok


def test_a_fee_that_no_longer_fits_is_signed_again_for_the_same_nonce(env: Env) -> None:
    (sender,) = env.senders(1)
    env.call("fee", sender, "faucet", sender, 5)

    def stop_after_signing(step: str) -> None:
        if step == "signed":
            raise RuntimeError("crashed after signing")

    worker = env.worker(crash_hook=stop_after_signing)
    with pytest.raises(RuntimeError, match="crashed after signing"):
        worker.run_once()
    worker.close()
    (signed,) = env.rows("fee")
    assert signed.status == TxStatus.SIGNED.value and signed.max_fee_per_gas
    # The base fee climbs above what the row was signed for.
    env.rpc("anvil_setNextBlockBaseFeePerGas", hex(signed.max_fee_per_gas * 4))
    env.rpc("evm_mine")
    env.drain()
    (mined,) = env.rows("fee")
    assert mined.status == TxStatus.MINED.value
    assert mined.nonce == signed.nonce and mined.tx_hash != signed.tx_hash
    assert (mined.max_fee_per_gas or 0) > signed.max_fee_per_gas * 4
    assert [h for h, _ in json.loads(mined.replaced_json or "[]")] == [signed.tx_hash]
    assert env.balance(sender) == 5
    assert audit(env.engine, env.runtime.rpc).ok


def test_a_sent_transaction_the_node_keeps_unmined_is_replaced_at_a_higher_fee(
    env: Env,
) -> None:
    # Seen in CI: Anvil 1.7's pool kept a sender's next transaction (right nonce, fee
    # fine) "queued" for good after a burst of concurrent sends. Here no block comes at all.
    (sender,) = env.senders(1)
    env.call("held", sender, "faucet", sender, 7)
    worker = env.worker(stuck_seconds=0, receipt_timeout=1)
    try:
        env.rpc("evm_setAutomine", False)
        try:
            worker.run_once()  # signed and sent; no block comes
            (sent,) = env.rows("held")
            assert sent.status == TxStatus.SENT.value and sent.max_fee_per_gas
            worker.run_once()  # known to the node, unmined: signed again, sent again
            (again,) = env.rows("held")
            assert again.tx_hash != sent.tx_hash and again.status == TxStatus.SENT.value
        finally:
            env.rpc("evm_setAutomine", True)
        env.rpc("evm_mine")
        worker.drain(timeout=60)
    finally:
        worker.close()
    (mined,) = env.rows("held")
    assert mined.status == TxStatus.MINED.value
    assert mined.nonce == sent.nonce and mined.tx_hash == again.tx_hash
    assert (mined.max_fee_per_gas or 0) > sent.max_fee_per_gas
    assert [h for h, _ in json.loads(mined.replaced_json or "[]")] == [sent.tx_hash]
    assert env.balance(sender) == 7
    assert audit(env.engine, env.runtime.rpc).ok


def test_audit_reports_a_next_nonce_nothing_holds(env: Env) -> None:
    (sender,) = env.senders(1)
    env.call("v0", sender, "faucet", sender, 1)
    env.drain()
    assert audit(env.engine, env.runtime.rpc).ok

    def set_next_nonce(value: int) -> None:
        with Session(env.engine) as s:
            state = s.get(OutboxSender, sender)
            assert state is not None
            state.next_nonce = value
            s.add(state)
            s.commit()

    set_next_nonce(3)  # the next write would be signed with nonce 3, above a gap
    report = audit(env.engine, env.runtime.rpc)
    assert [str(m) for m in report.mismatches] == [
        f"outbox (sender {sender}): the outbox's next nonce is 3 but the chain's is 1 and no "
        "row holds nonces 1..2: the next transaction would wait forever"
    ]
    set_next_nonce(1)
    assert audit(env.engine, env.runtime.rpc).ok


# ---- konbit verify and the mirror on a deployed system ---------------------------------


def test_konbit_verify_exits_1_on_outbox_mismatches_and_the_mirror_asks_to_reconcile(
    anvil: LocalChain,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings.load(
        env_file=None, environ={}, data_dir=tmp_path, rpc_url=anvil.url, database_url=database_url
    )
    runtime = Runtime(settings)
    upgrade(runtime.engine)
    deploy(runtime, progress=lambda _: None)
    for key, value in {
        "DATA_DIR": str(tmp_path),
        "RPC_URL": anvil.url,
        "DATABASE_URL": database_url,
    }.items():
        monkeypatch.setenv(f"KONBIT_{key}", value)
    monkeypatch.chdir(tmp_path)
    operator = runtime.operator()
    assert operator is not None
    contracts = runtime.contracts()
    told: list[int | None] = []
    worker = runtime.worker()

    def on_reorg(fork: int | None) -> None:  # what konbit run passes the mirror
        told.append(fork)
        worker.request_reconcile()

    mirror = Mirror.from_runtime(runtime, on_reorg=on_reorg)
    try:
        mirror.sync()
        snapshot = runtime.rpc.call("evm_snapshot")
        with Session(runtime.engine) as s:
            for i in range(3):
                submit(
                    s,
                    key=f"verify-faucet-{i}",
                    sender=operator,
                    contracts=contracts,
                    contract="TestStablecoin",
                    function="faucet",
                    args=[operator, 1 + i],
                )
        worker.drain(timeout=60)
        mirror.sync()
        assert konbit_main(["verify"]) == 0
        assert capsys.readouterr().out.rstrip().endswith(": OK")

        assert runtime.rpc.call("evm_revert", snapshot) is True
        assert konbit_main(["verify"]) == 1
        out = capsys.readouterr().out
        lines = [line for line in out.splitlines() if line.startswith("MISMATCH outbox tx")]
        assert len(lines) == 3, out
        assert "TestStablecoin.faucet" in lines[0] and "no receipt" in lines[0]
        assert "MISMATCH mirror cursor: last_block" in out  # it stands above the head

        # The mirror sees the head go back, rolls back and asks the worker to reconcile.
        runtime.rpc.call("evm_mine")
        mirror.sync()
        assert told and told[0] is not None
        assert worker.reconcile_requests.is_set()
        worker.drain(timeout=60)
        assert not worker.reconcile_requests.is_set()
        mirror.sync()
        assert konbit_main(["verify"]) == 0
    finally:
        mirror.close()
        worker.close()
        runtime.close()


def test_the_app_s_worker_and_mirror_wait_out_a_chain_that_is_down(
    database_url: str, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from konbit.mirror.models import MirrorCursor
    from konbit.server import create_app

    chain = LocalChain(tmp_path / "chain", port=free_port(), state_interval=1)
    chain.start()
    settings = Settings.load(
        env_file=None,
        environ={},
        data_dir=tmp_path,
        rpc_url=chain.url,
        database_url=database_url,
        mirror_poll_seconds=0.05,
    )
    runtime = Runtime(settings)
    try:
        upgrade(runtime.engine)
        deploy(runtime, progress=lambda _: None)
        operator = runtime.operator()
        assert operator is not None
        contracts = runtime.contracts()
        role = contracts.registry.functions.COOPERATIVE_ROLE().call()
        chain.stop()  # down before the app starts

        def write(key: str) -> None:
            with Session(runtime.engine) as s:
                submit(
                    s,
                    key=key,
                    sender=operator,
                    contracts=contracts,
                    contract="ClusterRegistry",
                    function="registerOrganisation",
                    args=[
                        runtime.vault.create_account("cooperative"),
                        role,
                        b"\x01" * 32,
                    ],
                )

        def mined_and_mirrored(key: str, timeout: float = 60) -> None:
            deadline = time.monotonic() + timeout
            while True:
                with Session(runtime.engine) as s:
                    row = s.exec(select(OutboxTx).where(OutboxTx.idempotency_key == key)).one()
                    cursor = s.get(MirrorCursor, runtime.chain_id)
                if (
                    row.status == TxStatus.MINED.value
                    and cursor is not None
                    and row.block_number is not None
                    and cursor.last_block >= row.block_number
                ):
                    return
                assert row.status != TxStatus.FAILED.value, row.error_name
                assert time.monotonic() < deadline, f"{key}: {row.status}"
                time.sleep(0.05)

        def mined_block(key: str) -> int:
            with Session(runtime.engine) as s:
                row = s.exec(select(OutboxTx).where(OutboxTx.idempotency_key == key)).one()
            assert row.block_number is not None
            return row.block_number

        with TestClient(create_app(settings)):
            time.sleep(2)  # worker and mirror cannot start: connection refused
            chain.start()
            chain_before = runtime.rpc.call("eth_chainId")
            write("while-up")
            mined_and_mirrored("while-up")
            # A whole dump holds it, backed up as `konbit run` does: the kill below may cut
            # the dump being written (under load it did, and the chain started afresh).
            kept_through_block(chain, mined_block("while-up"))
            pid = chain.recorded_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)  # down for a while, mid-run
            write("while-down")
            time.sleep(3)
            chain.start()
            assert runtime.rpc.call("eth_chainId") == chain_before
            write("after")
            for key in ("while-up", "while-down", "after"):
                mined_and_mirrored(key)
        assert audit(runtime.engine, runtime.rpc).ok
    finally:
        runtime.close()
        chain.stop()


# ---- konbit run, killed under load -----------------------------------------------------

#: 200 writes: single lots, batches of lots, farmer enrolments and faucet mints.
LOTS, BATCHES, FARMERS, FAUCETS = 100, 30, 35, 35
BATCH_SIZE = 3
#: Requests answered before the kill (the others are in flight or not sent yet).
KILL_AFTER = 90


@dataclass
class Request:
    key: str
    path: str
    body: dict[str, Any]
    kind: str
    answer: dict[str, Any] | None = None


@dataclass
class Server:
    """``konbit run`` in its own process group, as an operator would start it."""

    env: dict[str, str]
    data_dir: Path
    url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    started: list[int] = field(default_factory=list)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "konbit.cli", "run"],
                env=self.env,
                cwd=self.data_dir.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(self.process.pid)
        deadline = time.monotonic() + 180
        while True:
            assert self.process.poll() is None, f"konbit run exited:\n{self.tail()}"
            assert time.monotonic() < deadline, f"konbit run did not answer:\n{self.tail()}"
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM: uvicorn stops, then konbit run stops the chain it owns."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def chain_pid(self) -> int | None:
        pid_file = self.data_dir / "chain" / "anvil.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def konbit(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "konbit.cli", *args],
            env=self.env,
            cwd=self.data_dir.parent,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-60:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _requests(farmers: list[str], coop: str) -> list[Request]:
    out: list[Request] = []
    harvest = 1_700_000_000
    for i in range(LOTS):
        body = {
            "farmer": farmers[i % len(farmers)],
            "crop": 1,
            "grams": 10_000 + i,
            "grade": 2,
            "harvest_time": harvest,
        }
        out.append(Request(f"lot-{i}", "/cooperative/lots", body, "lot"))
    for j in range(BATCHES):
        lots = [
            {
                "farmer": farmers[(j + k) % len(farmers)],
                "crop": 2,
                "grams": 500_000 + j * BATCH_SIZE + k,
                "grade": 1,
                "harvest_time": harvest,
            }
            for k in range(BATCH_SIZE)
        ]
        out.append(Request(f"batch-{j}", "/cooperative/lots/batch", {"lots": lots}, "batch"))
    for f in range(FARMERS):
        out.append(
            Request(f"farmer-{f}", "/cooperative/farmers", {"name": f"Farmer {f}"}, "farmer")
        )
    for m in range(FAUCETS):
        body = {"address": coop, "amount": 7_000_000 + m}
        out.append(Request(f"faucet-{m}", "/operator/faucet", body, "faucet"))
    # Interleaved, so that every kind is in flight at the kill.
    return [out[i] for i in sorted(range(len(out)), key=lambda i: (i * 7919) % len(out))]


def _wait_group_gone(group: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"processes of group {group} still running"
        time.sleep(0.1)


def _post(
    client: httpx.Client, request: Request, key: str, *, wait: bool, retries: int = 0
) -> httpx.Response:
    for attempt in range(retries + 1):
        try:
            reply = client.post(
                request.path,
                params={"wait": "true"} if wait else None,
                json=request.body,
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": request.key},
            )
        except httpx.HTTPError:
            if attempt == retries:
                raise
            time.sleep(0.5)
            continue
        if reply.status_code in (429, 503) and attempt < retries:
            time.sleep(0.5)
            continue
        return reply
    raise AssertionError("unreachable")


def _copy_whole_dump(state_file: Path, to: Path) -> int:
    """Copy the chain's state dump (retrying while Anvil is writing it); its head block."""
    deadline = time.monotonic() + 30
    while True:
        data = state_file.read_bytes()
        try:
            head = int(json.loads(data)["best_block_number"])
        except (ValueError, KeyError):
            assert time.monotonic() < deadline, "no whole state dump"
            time.sleep(0.05)
            continue
        to.write_bytes(data)
        return head


def _await_mined_above(engine: Engine, block: int) -> None:
    """Until the outbox has recorded a receipt in a block after ``block``."""
    deadline = time.monotonic() + 120
    while True:
        with Session(engine) as s:
            top = s.exec(
                select(func.max(OutboxTx.block_number)).where(
                    OutboxTx.status == TxStatus.MINED.value
                )
            ).one()
        if top is not None and top > block:
            return
        assert time.monotonic() < deadline, f"nothing mined after block {block}"
        time.sleep(0.05)


def _logs(rpc_url: str, addresses: list[str]) -> list[Any]:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    decoder = konbit_event_decoder()
    raw = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": addresses})  # type: ignore[typeddict-item]
    events = []
    for log in raw:
        topics = ["0x" + bytes(t).hex() for t in log["topics"]]
        data = "0x" + bytes(log["data"]).hex()
        event = decoder.decode(topics, data)
        events.append((log["address"], topics, data, event))
    return events


TRANSFER_TOPIC = "0x" + Web3.keccak(text="Transfer(address,address,uint256)").hex().removeprefix(
    "0x"
)


@pytest.mark.parametrize("kill", ["group", "chain", "server"])
def test_konbit_run_killed_under_load_lands_every_write_exactly_once(
    kill: str, database_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    port, chain_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONBIT_")}
    env.update(
        KONBIT_DATA_DIR=str(data_dir),
        KONBIT_PORT=str(port),
        KONBIT_CHAIN_PORT=str(chain_port),
        KONBIT_DATABASE_URL=database_url,
        KONBIT_RATE_LIMIT="100000/minute",
        KONBIT_LOG_LEVEL="INFO",
    )
    server = Server(env, data_dir, f"http://127.0.0.1:{port}", tmp_path / "konbit-run.log")
    chain_url = f"http://127.0.0.1:{chain_port}"
    engine = make_engine(database_url)
    try:
        server.start()
        issued = server.konbit("apikey")
        assert issued.returncode == 0, issued.stderr
        operator_key = issued.stdout.strip().splitlines()[-1]
        client = httpx.Client(base_url=server.url, timeout=120)
        op = {"Authorization": f"Bearer {operator_key}"}
        reply = client.post(
            "/operator/organisations",
            params={"wait": "true"},
            json={"name": "Kooperativ Lakay", "role": "cooperative"},
            headers=op,
        )
        assert reply.status_code == 200, reply.text
        coop = reply.json()["organisation"]["address"]
        reply = client.post(f"/operator/organisations/{coop}/keys", json={"label": "t"}, headers=op)
        assert reply.status_code == 201, reply.text
        coop_key = reply.json()["key"]
        farmers = []
        for n in range(3):
            reply = client.post(
                "/cooperative/farmers",
                params={"wait": "true"},
                json={"name": f"Founding farmer {n}"},
                headers={"Authorization": f"Bearer {coop_key}"},
            )
            assert reply.status_code == 200, reply.text
            farmers.append(reply.json()["farmer"]["address"])

        requests = _requests(farmers, coop)
        assert len(requests) == 200
        key_of = {"lot": coop_key, "batch": coop_key, "farmer": coop_key, "faucet": operator_key}

        # ---- 200 writes in flight, then SIGKILL
        answered = threading.Semaphore(0)
        killed = threading.Event()

        def fire(request: Request) -> None:
            if killed.is_set():
                return
            try:
                reply = _post(client, request, key_of[request.kind], wait=False)
            except httpx.HTTPError:
                return  # the kill: this one is replayed below
            if reply.status_code == 202:
                request.answer = reply.json()
                answered.release()
            else:
                assert killed.is_set(), (request.key, reply.status_code, reply.text)

        def await_answers(n: int) -> None:
            for _ in range(n):
                assert answered.acquire(timeout=120), f"writes stalled:\n{server.tail()}"

        state_file = data_dir / "chain" / "state.json"
        older = tmp_path / "older-state.json"
        pool = ThreadPoolExecutor(max_workers=12)
        futures = [pool.submit(fire, r) for r in requests]
        if kill == "chain":
            # The chain will come back from a dump older than its last one (as if its
            # last dumps had not been written): blocks in which the outbox has already
            # recorded receipts are lost for sure, not only those of the last second.
            await_answers(KILL_AFTER // 2)
            older_block = _copy_whole_dump(state_file, older)
            await_answers(KILL_AFTER - KILL_AFTER // 2)
            _await_mined_above(engine, older_block)
        else:
            await_answers(KILL_AFTER)
        chain_before = server.chain_pid()
        assert chain_before is not None
        assert server.process is not None
        head_before = probe(chain_url)
        killed.set()  # from here on, refusals (503: no chain) are expected
        if kill == "group":
            os.killpg(server.process.pid, signal.SIGKILL)
        elif kill == "server":
            os.kill(server.process.pid, signal.SIGKILL)
        else:
            os.killpg(chain_before, signal.SIGKILL)  # the chain runs in its own session
            os.replace(older, state_file)  # before konbit run notices and restarts it
        for future in futures:
            future.result(timeout=180)
        pool.shutdown()
        in_flight = sum(r.answer is None for r in requests)

        if kill == "chain":
            # konbit run lives on and starts the chain again from its last state dump.
            assert server.process.poll() is None
            deadline = time.monotonic() + 60
            while server.chain_pid() in (None, chain_before) or probe(chain_url) is None:
                assert time.monotonic() < deadline, f"chain not restarted:\n{server.tail()}"
                time.sleep(0.1)
        else:
            server.process.wait(timeout=30)
            # Its web workers see it gone and stop; until then they still answer /healthz,
            # which would pass for the new server being up.
            _wait_group_gone(server.process.pid)
            # The chain has its own session: a crash of the server leaves it running.
            assert server.chain_pid() == chain_before
            assert probe(chain_url) is not None
            server.start()
        head_after = probe(chain_url)

        # ---- replay every request with its key; ?wait=true answers once mined and mirrored
        def replay(request: Request) -> None:
            reply = _post(client, request, key_of[request.kind], wait=True, retries=20)
            assert reply.status_code == 200, (request.key, reply.status_code, reply.text)
            body = reply.json()
            if request.answer is not None:
                assert [t["id"] for t in body["transactions"]] == [
                    t["id"] for t in request.answer["transactions"]
                ]
                assert body["replayed"] is True
            request.answer = body

        with ThreadPoolExecutor(max_workers=12) as replays:
            list(replays.map(replay, requests))

        # ---- every effect on chain exactly once
        genesis = rpc_call(chain_url, "eth_getBlockByNumber", ["0x0", False])["hash"]
        book = AddressBook.load(data_dir, 31337, genesis)
        assert book is not None
        events = _logs(chain_url, list(book.addresses.values()))
        recorded = Counter(
            int(e.args["grams"]) for *_, e in events if e is not None and e.name == "LotRecorded"
        )
        wanted_lots = Counter(int(r.body["grams"]) for r in requests if r.kind == "lot")
        wanted_lots.update(
            int(lot["grams"]) for r in requests if r.kind == "batch" for lot in r.body["lots"]
        )
        assert {g: n for g, n in recorded.items() if g in wanted_lots} == dict(wanted_lots)
        assert sum(recorded.values()) == LOTS + BATCHES * BATCH_SIZE
        enrolled = Counter(
            str(e.args["farmer"]).lower()
            for *_, e in events
            if e is not None and e.name == "FarmerEnrolled"
        )
        new_farmers = [
            str(r.answer["farmer"]["address"]).lower()
            for r in requests
            if r.kind == "farmer" and r.answer
        ]
        assert len(set(new_farmers)) == FARMERS
        assert all(enrolled[f] == 1 for f in new_farmers)
        assert sum(enrolled.values()) == FARMERS + len(farmers)
        coin = book.address("TestStablecoin")
        minted = Counter(
            int(data, 16)
            for address, topics, data, _ in _logs(chain_url, [coin])
            if topics[0] == TRANSFER_TOPIC
            and int(topics[1], 16) == 0
            and int(topics[2], 16) == int(coop, 16)
        )
        assert minted == Counter(7_000_000 + m for m in range(FAUCETS))

        # ---- the outbox has no stuck row, and konbit verify agrees with the chain
        deadline = time.monotonic() + 60
        while True:
            with Session(engine) as s:
                stuck = s.exec(
                    select(func.count())
                    .select_from(OutboxTx)
                    .where(col(OutboxTx.status).in_(PENDING))
                ).one()
                failed = s.exec(
                    select(OutboxTx.id, OutboxTx.function, OutboxTx.error_name).where(
                        OutboxTx.status == TxStatus.FAILED.value
                    )
                ).all()
            if not stuck:
                break
            assert time.monotonic() < deadline, f"{stuck} rows stuck:\n{server.tail()}"
            time.sleep(0.2)
        assert failed == []
        with Session(engine) as s:
            resent = s.exec(
                select(func.count())
                .select_from(OutboxTx)
                .where(col(OutboxTx.last_error).like("%was lost by the chain%"))
            ).one()
        if kill == "chain":
            assert resent > 0  # recorded mined, lost with their blocks, mined again
        verified = server.konbit("verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        print(
            f"{kill}: {in_flight} of 200 writes unanswered at the kill; chain head "
            f"{head_before and head_before[1]} before, {head_after and head_after[1]} after; "
            f"{resent} transactions recorded mined were lost and sent again"
        )
        # SIGTERM: konbit run stops, and stops the chain it owns (its state saved).
        server.stop()
        assert server.chain_pid() is None, server.tail()
        assert probe(chain_url) is None
    finally:
        engine.dispose()
        server.stop()
        # Whatever the test started and is still running (a chain whose server was killed).
        pid = server.chain_pid()
        if pid is not None:
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)

"""The managed Anvil: start, persist across a clean stop, attach, CLI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from chain_dumps import kept_through_block
from eth_account import Account
from web3 import Web3

from konbit.chain.local import ChainError, LocalChain, free_port
from konbit.chain.rpc import RpcClient


def _send_value(url: str, to: str, wei: int) -> str:
    w3 = Web3(Web3.HTTPProvider(url))
    sender = w3.eth.accounts[0]
    tx_hash = w3.eth.send_transaction({"from": sender, "to": to, "value": wei})
    w3.eth.wait_for_transaction_receipt(tx_hash)
    return tx_hash.hex()


def test_transaction_survives_stop_and_restart(tmp_path: Path) -> None:
    recipient = Account.create().address
    chain = LocalChain(tmp_path / "chain", port=free_port())
    chain.start()
    try:
        tx_hash = _send_value(chain.url, recipient, 12_345)
        block_before = chain.status().block_number
    finally:
        assert chain.stop()
    assert chain.state_file.stat().st_size > 0
    assert not chain.status().running

    again = LocalChain(tmp_path / "chain", port=free_port())
    again.start()
    try:
        w3 = Web3(Web3.HTTPProvider(again.url))
        assert w3.eth.get_balance(recipient) == 12_345
        assert w3.eth.block_number == block_before
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
    finally:
        again.stop()


def test_start_attaches_to_a_node_already_listening(tmp_path: Path) -> None:
    first = LocalChain(tmp_path / "a", port=free_port())
    first.start()
    try:
        second = LocalChain(tmp_path / "b", port=first.port)
        status = second.start()
        assert status.running
        assert not status.managed  # nothing recorded in b/: attached, not started
        assert not second.stop()  # and it does not stop a node it did not start
        assert first.status().running
    finally:
        first.stop()


def test_wrong_chain_id_on_port_is_refused(tmp_path: Path) -> None:
    with LocalChain(tmp_path / "a", port=free_port(), chain_id=31337) as first:
        other = LocalChain(tmp_path / "b", port=first.port, chain_id=777)
        with pytest.raises(ChainError, match="chain id 31337"):
            other.start()


def test_cli_up_status_down(tmp_path: Path) -> None:
    env = {**os.environ, "KONBIT_DATA_DIR": str(tmp_path), "KONBIT_CHAIN_PORT": str(free_port())}
    konbit = [sys.executable, "-m", "konbit.cli", "chain"]

    def run(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*konbit, action], env=env, capture_output=True, text=True, timeout=60
        )

    assert run("status").returncode == 3
    up = run("up")
    assert up.returncode == 0, up.stderr
    assert "chain id 31337" in up.stdout
    status = run("status")
    assert status.returncode == 0 and "running" in status.stdout
    down = run("down")
    assert down.returncode == 0 and "state saved" in down.stdout
    assert (tmp_path / "chain" / "state.json").stat().st_size > 0
    assert run("status").returncode == 3


def test_the_node_itself_is_started_not_the_npm_wrapper(tmp_path: Path) -> None:
    with LocalChain(tmp_path / "chain", port=free_port()) as chain:
        pid = chain.recorded_pid()
        assert pid is not None
        # A SIGKILL to this pid stops the chain (a Node.js wrapper would leave it running).
        assert Path(f"/proc/{pid}/exe").resolve().name == "anvil"


def test_konbit_runs_its_chain_with_a_short_state_interval(tmp_path: Path) -> None:
    from konbit.commands.chain import local_chain
    from konbit.settings import Settings

    chain = local_chain(Settings.load(env_file=None, environ={}, data_dir=tmp_path))
    command = chain.command()
    assert command[command.index("--state-interval") + 1] == "1"
    assert Path(command[0]).name == "anvil" and "node_modules/.bin" not in command[0]


def test_the_node_leaves_no_old_states_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Anvil by default writes every old block's state under ~/.foundry/anvil/tmp once a few
    # hundred are in memory, and keeps them when it stops: a long test run filled a disk.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    with LocalChain(tmp_path / "chain", port=free_port()) as chain:
        rpc = RpcClient(chain.url)
        for _ in range(300):
            rpc.call("anvil_mine", "0x2")
        assert int(rpc.call("eth_blockNumber"), 16) == 600
    left = [path for path in home.rglob("*") if path.is_file()]
    assert left == []


def test_a_dump_cut_short_by_a_kill_falls_back_to_the_last_whole_one(tmp_path: Path) -> None:
    recipient = Account.create().address
    chain = LocalChain(tmp_path / "chain", port=free_port())
    chain.start()
    try:
        _send_value(chain.url, recipient, 777)
    finally:
        assert chain.stop()
    assert chain.backup_state(settled=0)  # what `konbit run` does every few seconds
    assert not chain.backup_state(settled=0)  # nothing new since
    whole = chain.state_file.read_bytes()
    chain.state_file.write_bytes(whole[: len(whole) // 2])  # killed while writing it

    again = LocalChain(tmp_path / "chain", port=free_port())
    again.start()
    try:
        assert Web3(Web3.HTTPProvider(again.url)).eth.get_balance(recipient) == 777
    finally:
        again.stop()
    assert (tmp_path / "chain" / "state.broken.json").stat().st_size == len(whole) // 2


def test_the_genesis_survives_restarts_and_kills(tmp_path: Path) -> None:
    import os
    import signal

    chain = LocalChain(tmp_path / "chain", port=free_port(), state_interval=1)
    chain.start()
    w3 = Web3(Web3.HTTPProvider(chain.url))
    genesis = w3.eth.get_block(0)["hash"]
    try:
        for _ in range(3):  # Anvil adds a genesis of its own to its dump at every start
            _send_value(chain.url, Account.create().address, 1)
            # A whole dump holds the transfer, even if the kill cuts the next one.
            kept_through_block(chain, w3.eth.block_number)
            pid = chain.recorded_pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            chain.start()
            assert w3.eth.get_block(0)["hash"] == genesis
    finally:
        chain.stop()
    again = LocalChain(tmp_path / "chain", port=free_port())
    with again:
        assert Web3(Web3.HTTPProvider(again.url)).eth.block_number == 3

"""Chains known by their genesis: one data directory, several chains with the same id.

Real Anvil nodes on free ports (never 8545 / 18545); brownie's CLI runs with a HOME of its
own whose network-config.yaml puts its development Anvil on a free port.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from konbit.chain.contracts import KONBIT_CONTRACTS, AddressBook
from konbit.chain.local import LocalChain, free_port, rpc_call
from konbit.db.migrate import upgrade
from konbit.db.models import ChainNamespace
from konbit.mirror.indexer import Mirror
from konbit.mirror.models import MirrorCursor
from konbit.outbox.models import OutboxSender, OutboxTx, TxStatus
from konbit.outbox.service import submit
from konbit.paths import PROJECT_ROOT
from konbit.runtime import Runtime
from konbit.services.chains import ChainMismatch, bind, forget, report, unsupported
from konbit.services.deploy import deploy
from konbit.settings import Settings

ALL_CONTRACTS = {*KONBIT_CONTRACTS, "TestStablecoin"}
#: Genesis timestamps far apart: two nodes started in the same second would otherwise
#: have the same genesis block (same accounts, same time), i.e. be the same chain.
_stamps = iter(range(1_700_000_000, 1_800_000_000, 86_400))


def _chain(tmp_path: Path, name: str, chain_id: int = 31337) -> LocalChain:
    return LocalChain(
        tmp_path / name,
        port=free_port(),
        chain_id=chain_id,
        extra_args=("--timestamp", str(next(_stamps))),
    )


@pytest.fixture
def two_chains(tmp_path: Path) -> Iterator[tuple[LocalChain, LocalChain]]:
    a, b = _chain(tmp_path, "a"), _chain(tmp_path, "b")
    a.start()
    try:
        b.start()
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


def _runtime(data_dir: Path, url: str, database_url: str) -> Runtime:
    settings = Settings.load(
        env_file=None, environ={}, data_dir=data_dir, rpc_url=url, database_url=database_url
    )
    runtime = Runtime(settings)
    upgrade(runtime.engine)
    return runtime


def _genesis(url: str) -> str:
    return str(rpc_call(url, "eth_getBlockByNumber", ["0x0", False])["hash"])


# ---------------------------------------------------------------------- one database


def test_two_chains_with_one_id_keep_apart_in_one_database(
    two_chains: tuple[LocalChain, LocalChain], database_url: str, tmp_path: Path
) -> None:
    a_chain, b_chain = two_chains
    data_dir = tmp_path / "data"
    a = _runtime(data_dir, a_chain.url, database_url)
    b = _runtime(data_dir, b_chain.url, database_url)
    try:
        assert a.chain_id == b.chain_id == 31337 and a.genesis != b.genesis
        book_a = deploy(a, progress=lambda _: None)
        Mirror.from_runtime(a).sync()
        operator = a.operator()
        assert operator is not None
        # A write for chain A that is still pending when the developer moves to chain B.
        with Session(a.engine) as session:
            left, _ = submit(
                session,
                key="left-on-a",
                sender=operator,
                to=operator,
                function="left-on-a",
                chain_genesis=a.genesis,
            )

        started = time.monotonic()
        book_b = deploy(b, progress=lambda _: None)  # neither blocked by A's row nor sent it
        assert time.monotonic() - started < 60
        assert set(book_b.addresses) == set(book_a.addresses) == ALL_CONTRACTS
        assert book_b.genesis == b.genesis and book_a.genesis == a.genesis
        for name, address in book_b.addresses.items():
            assert b.w3.eth.get_code(address), name
        assert AddressBook.load(data_dir, 31337, a.genesis) == book_a
        assert AddressBook.load(data_dir, 31337, b.genesis) == book_b
        assert AddressBook.path(data_dir, 31337, b.genesis).name == (
            f"31337-{b.genesis[2:18]}.json"
        )
        with Session(b.engine) as session:
            assert session.get(OutboxTx, left.id).status == TxStatus.QUEUED  # type: ignore[union-attr]
            active = session.exec(select(ChainNamespace).where(col(ChainNamespace.active))).all()
            assert [n.genesis_hash for n in active] == [b.genesis]
            # Every transaction B mined is B's; no row has been given to the wrong chain.
            for row in session.exec(select(OutboxTx)).all():
                assert row.chain_genesis in (a.genesis, b.genesis)
                if row.tx_hash is not None and row.chain_genesis == b.genesis:
                    assert b.w3.eth.get_transaction_receipt(row.tx_hash)["status"] == 1
        # The mirror held A's projection: it reads B's afresh.
        Mirror.from_runtime(b).sync()
        with Session(b.engine) as session:
            cursor = session.exec(select(MirrorCursor)).one()
        assert cursor.genesis_hash == b.genesis
        status = report(b)
        assert status.mirrored and status.book == book_b
        assert any("OPERATOR_ROLE" in account.roles for account in status.accounts)
        assert [other.genesis for other in status.others] == [a.genesis]

        # Back on A: its namespace is there again, and its pending row goes on, with the
        # operator's nonce counted on A (not B's).
        assert bind(a).previous is not None
        worker = a.worker(threads=1)
        try:
            worker.drain(timeout=60)
        finally:
            worker.close()
        with Session(a.engine) as session:
            row = session.get(OutboxTx, left.id)
            assert row is not None and row.status == TxStatus.MINED
            assert a.w3.eth.get_transaction_receipt(row.tx_hash)["status"] == 1
            state = session.get(OutboxSender, operator)
            assert state is not None and state.chain_genesis == a.genesis
        assert deploy(a, progress=lambda _: None).addresses == book_a.addresses  # kept

        # Forgetting B drops its rows and its book, not A's.
        assert forget(a, b.genesis) > 0
        assert AddressBook.load(data_dir, 31337, b.genesis) is None
        assert AddressBook.load(data_dir, 31337, a.genesis) == book_a
        with Session(a.engine) as session:
            assert not session.exec(
                select(OutboxTx).where(OutboxTx.chain_genesis == b.genesis)
            ).all()
    finally:
        a.close()
        b.close()


def test_state_from_before_genesis_hashes_goes_to_its_chain(
    two_chains: tuple[LocalChain, LocalChain], tmp_path: Path
) -> None:
    """Rows and ``<chainId>.json`` written before chains were told apart: the chain whose
    blocks they name adopts them; another chain gets a namespace of its own."""
    a_chain, b_chain = two_chains
    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'konbit.db'}"
    a = _runtime(data_dir, a_chain.url, url)
    try:
        deploy(a, progress=lambda _: None)
        path = AddressBook.path(data_dir, 31337, a.genesis)
        legacy = json.loads(path.read_text())
        del legacy["genesis"]
        AddressBook.path(data_dir, 31337, None).write_text(json.dumps(legacy))
        path.unlink()
        _as_before_genesis_hashes(a)
    finally:
        a.close()

    b = _runtime(data_dir, b_chain.url, url)
    try:
        bind(b)  # B is not the chain the old rows were sent to
        assert b.address_book() is None
        assert AddressBook.path(data_dir, 31337, "unknown").is_file()
        assert deploy(b, progress=lambda _: None).genesis == b.genesis
    finally:
        b.close()


def _as_before_genesis_hashes(runtime: Runtime) -> None:
    """The database as a Konbit before genesis hashes left it: rows name no chain."""
    with Session(runtime.engine) as session:
        for row in session.exec(select(OutboxTx)).all():
            row.chain_genesis = None
            session.add(row)
        for namespace in session.exec(select(ChainNamespace)).all():
            session.delete(namespace)
        session.commit()


def test_state_from_before_genesis_hashes_is_adopted_by_its_own_chain(
    tmp_path: Path,
) -> None:
    chain = _chain(tmp_path, "a")
    data_dir = tmp_path / "data"
    url = f"sqlite:///{data_dir / 'konbit.db'}"
    with chain:
        a = _runtime(data_dir, chain.url, url)
        try:
            book = deploy(a, progress=lambda _: None)
            path = AddressBook.path(data_dir, 31337, a.genesis)
            path.replace(AddressBook.path(data_dir, 31337, None))
            _as_before_genesis_hashes(a)
            bind(a)
            assert AddressBook.load(data_dir, 31337, a.genesis) == book
            assert not AddressBook.path(data_dir, 31337, None).exists()
            with Session(a.engine) as session:
                assert {r.chain_genesis for r in session.exec(select(OutboxTx)).all()} == {
                    a.genesis
                }
        finally:
            a.close()


def test_another_non_local_chain_is_refused(tmp_path: Path, database_url: str) -> None:
    first, second = _chain(tmp_path, "x", 4242), _chain(tmp_path, "y", 4242)
    data_dir = tmp_path / "data"
    with first, second:
        x = _runtime(data_dir, first.url, database_url)
        y = _runtime(data_dir, second.url, database_url)
        try:
            bind(x)
            with pytest.raises(ChainMismatch) as refused:
                bind(y)
            message = str(refused.value)
            assert x.genesis in message and y.genesis in message
            assert "chain 4242" in message and "konbit chain reset" in message
            assert bind(x).previous is None  # the first one is still fine
        finally:
            x.close()
            y.close()


# ---------------------------------------------------------------------- the commands


def _konbit_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONBIT_")}
    env.update(KONBIT_DATA_DIR=str(data_dir), KONBIT_LOG_LEVEL="WARNING", **extra)
    return env


def _konbit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "konbit.cli", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _brownie_home(tmp_path: Path) -> Path:
    """A HOME whose brownie starts its development Anvil on a free port (not 8545)."""
    home = tmp_path / "home"
    (home / ".brownie").mkdir(parents=True)
    (home / ".brownie" / "network-config.yaml").write_text(
        f"""live: []
development:
  - name: Anvil
    id: development
    cmd: anvil --max-persisted-states 0
    host: http://127.0.0.1
    cmd_settings:
      port: {free_port()}
      gas_limit: 30000000
      accounts: 10
      base_fee: 0
"""
    )
    return home


def _brownie_project(tmp_path: Path) -> Path:
    """The project for brownie to run in: this one, or a copy where no folder has a dot.

    brownie 1.22 imports a script by its absolute path with dots for slashes
    (``brownie/project/scripts.py``, ``_import_from_path``), so from a clone under, say,
    ``/tmp/tmp.x1y2/konbit`` every ``brownie run`` fails with "No module named 'tmp.tmp'".
    """
    if not any("." in part for part in PROJECT_ROOT.parts[1:]):
        return PROJECT_ROOT
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_ROOT / "brownie-config.yaml", project)
    for folder in ("contracts", "interfaces"):
        if (PROJECT_ROOT / folder).is_dir():
            shutil.copytree(PROJECT_ROOT / folder, project / folder)
    (project / "scripts").mkdir()
    for script in ("__init__.py", "deploy.py", "console.py"):
        shutil.copy(PROJECT_ROOT / "scripts" / script, project / "scripts")
    (project / "tests" / "contracts").mkdir(parents=True)  # brownie-config's test folder
    (project / "node_modules").symlink_to(PROJECT_ROOT / "node_modules")  # remappings
    return project


def _brownie(project: Path, home: Path, data_dir: Path, *args: str, timeout: float) -> str:
    """``brownie <args>`` in ``project`` with that HOME; its output."""
    env = _konbit_env(data_dir, HOME=str(home))
    env.setdefault("SOLCX_BINARY_PATH", str(PROJECT_ROOT / "scripts" / "solc-shim"))
    done = subprocess.run(
        [str(Path(sys.executable).with_name("brownie")), *args],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _brownie_deploy(project: Path, home: Path, data_dir: Path) -> Path:
    """``brownie run scripts/deploy.py`` on a fresh Anvil; the address book it wrote."""
    started = time.monotonic()
    stdout = _brownie(project, home, data_dir, "run", "scripts/deploy.py", timeout=150)
    assert time.monotonic() - started < 60, "the deploy waited for another chain's rows"
    line = next(ln for ln in stdout.splitlines() if ln.strip().startswith("address book:"))
    return Path(line.split(":", 1)[1].strip())


def _full_book(path: Path) -> dict[str, str]:
    body = json.loads(path.read_text())
    assert set(body["contracts"]) == ALL_CONTRACTS
    assert body["chainId"] == 31337 and path.name == f"31337-{body['genesis'][2:18]}.json"
    return dict(body["contracts"])


def test_brownie_deploy_again_and_again_on_fresh_chains(tmp_path: Path) -> None:
    home, data_dir = _brownie_home(tmp_path), tmp_path / "data"
    project = _brownie_project(tmp_path)
    # Compiling (a fresh clone has no build/) is once, and not what the runs are timed for.
    _brownie(project, home, data_dir, "compile", timeout=900)
    books = [_brownie_deploy(project, home, data_dir) for _ in range(3)]
    assert len(set(books)) == 3  # three chains, three address books
    for book in books:
        _full_book(book)

    # `konbit run` on yet another chain with the same id, then brownie again.
    chain = _chain(tmp_path, "other")
    with chain:
        port = free_port()
        env = _konbit_env(data_dir, KONBIT_RPC_URL=chain.url, KONBIT_PORT=str(port))
        with _serving(env, tmp_path / "run.log", port):
            pass
        _full_book(AddressBook.path(data_dir, 31337, _genesis(chain.url)))
    _full_book(_brownie_deploy(project, home, data_dir))


def _run(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "konbit.cli", "run"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def _serving(env: dict[str, str], log: Path, port: int) -> Iterator[None]:
    """``konbit run`` until it answers on ``port``; stopped on leaving."""
    process = _run(env, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield
    finally:
        _stop(process)


def test_konbit_run_on_a_data_dir_of_another_chain(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "run.log"
    # The data directory belongs to a first local chain (deployed, then gone).
    first = _chain(tmp_path, "first")
    with first:
        env = _konbit_env(data_dir, KONBIT_RPC_URL=first.url)
        assert _konbit(env, "deploy").returncode == 0
    second = _chain(tmp_path, "second")
    with second:
        port = free_port()
        env = _konbit_env(data_dir, KONBIT_RPC_URL=second.url, KONBIT_PORT=str(port))
        with _serving(env, log, port):
            meta = httpx.get(f"http://127.0.0.1:{port}/meta", timeout=10).json()
            assert meta["genesis_hash"] == _genesis(second.url)
        _full_book(AddressBook.path(data_dir, 31337, _genesis(second.url)))
        status = _konbit(env, "chain", "status")
        assert status.returncode == 0, status.stderr
        assert f"genesis: {_genesis(second.url)}" in status.stdout
        lines = status.stdout.splitlines()
        assert any(ln.split()[:1] == ["ClusterRegistry"] for ln in lines), status.stdout
        assert any(" operator " in ln and "roles:" in ln for ln in lines), status.stdout
        assert "also in this database: chain 31337" in status.stdout


def test_konbit_run_binds_a_local_node_restarted_as_a_new_chain(tmp_path: Path) -> None:
    """A developer restarts their Anvil (a new chain at the same URL) under `konbit run`:
    it notices, deploys on the new chain and serves it, as a new `konbit run` would."""
    data_dir, log, port = tmp_path / "data", tmp_path / "run.log", free_port()
    first = _chain(tmp_path, "first")
    second = LocalChain(
        tmp_path / "second", port=first.port, extra_args=("--timestamp", str(next(_stamps)))
    )
    env = _konbit_env(data_dir, KONBIT_RPC_URL=first.url, KONBIT_PORT=str(port))
    api = f"http://127.0.0.1:{port}"
    try:
        first.start()
        with _serving(env, log, port):
            assert httpx.get(f"{api}/meta", timeout=10).json()["genesis_hash"] == _genesis(
                first.url
            )
            issued = _konbit(env, "apikey", "--label", "dev")
            assert issued.returncode == 0, issued.stderr
            key = issued.stdout.strip().splitlines()[-1]
            first.stop()
            second.start()
            new = _genesis(second.url)
            # A client retries while the server binds the new chain: never a 500 meanwhile.
            deadline, statuses = time.monotonic() + 120, []
            while True:
                assert time.monotonic() < deadline, (statuses, log.read_text()[-3000:])
                try:
                    reply = httpx.post(
                        f"{api}/operator/organisations",
                        params={"wait": "true"},
                        json={"name": "After the restart", "role": "cooperative"},
                        # No idempotency key: a claim is not per chain instance, so a retry
                        # would find the first attempt's, recorded for the old chain.
                        headers={"Authorization": f"Bearer {key}"},
                        timeout=120,
                    )
                except httpx.HTTPError:
                    time.sleep(0.5)  # the web workers are starting again
                    continue
                statuses.append(reply.status_code)
                if reply.status_code == 200:
                    break
                # 503: nothing deployed yet, or a write of the old chain cut short by the
                # restart (its row stays with that chain; `konbit verify` lists it).
                assert reply.status_code == 503, reply.text
                time.sleep(0.5)
            assert any(e["event"] == "OrganisationRegistered" for e in reply.json()["events"])
            assert httpx.get(f"{api}/meta", timeout=10).json()["genesis_hash"] == new
        assert "is another chain now" in log.read_text()
        _full_book(AddressBook.path(data_dir, 31337, new))
    finally:
        second.stop()
        first.stop()


def test_konbit_run_refuses_another_non_local_chain(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "run.log"
    first = _chain(tmp_path, "first", 4242)
    with first:
        env = _konbit_env(data_dir, KONBIT_RPC_URL=first.url)
        done = _konbit(env, "deploy", "--local")
        assert done.returncode == 0, done.stderr[-3000:]
        first_genesis = _genesis(first.url)
    second = _chain(tmp_path, "second", 4242)
    with second:
        env = _konbit_env(data_dir, KONBIT_RPC_URL=second.url, KONBIT_PORT=str(free_port()))
        process = _run(env, log)
        try:
            assert process.wait(timeout=120) == 1
        finally:
            _stop(process)
        said = log.read_text()
        assert first_genesis in said and _genesis(second.url) in said
        assert "konbit chain reset" in said
        # `konbit chain reset` makes no new non-local chain...
        refused = _konbit(env, "chain", "reset", "--yes")
        assert refused.returncode == 1 and "not a local chain" in refused.stderr
        # ...but --forget lets this database follow the node's chain instead.
        forgot = _konbit(env, "chain", "reset", "--yes", "--forget")
        assert forgot.returncode == 0, forgot.stderr
        assert not AddressBook.path(data_dir, 4242, first_genesis).exists()
        deployed = _konbit(env, "deploy", "--local")
        assert deployed.returncode == 0, deployed.stderr[-3000:]


def test_chain_reset_starts_a_new_managed_chain(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _konbit_env(data_dir, KONBIT_CHAIN_PORT=str(free_port()))
    chain = LocalChain(data_dir / "chain", port=int(env["KONBIT_CHAIN_PORT"]))
    try:
        assert _konbit(env, "chain", "up").returncode == 0
        assert _konbit(env, "deploy").returncode == 0
        before = _genesis(chain.url)
        assert AddressBook.path(data_dir, 31337, before).is_file()
        asked = subprocess.run(
            [sys.executable, "-m", "konbit.cli", "chain", "reset"],
            env=env,
            cwd=PROJECT_ROOT,
            input="n\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert asked.returncode == 1 and _genesis(chain.url) == before  # not confirmed
        reset = _konbit(env, "chain", "reset", "--yes")
        assert reset.returncode == 0, reset.stderr
        after = _genesis(chain.url)
        assert after != before and after in reset.stdout
        assert not AddressBook.path(data_dir, 31337, before).exists()
        status = _konbit(env, "chain", "status")
        assert "deployments: none" in status.stdout
        assert _konbit(env, "deploy").returncode == 0
        _full_book(AddressBook.path(data_dir, 31337, after))
    finally:
        _konbit(env, "chain", "down")


def test_ganache_is_refused_by_name_and_anvil_is_not(anvil: LocalChain) -> None:
    """Ganache re-executes a resent transaction (../shared/TOOLCHAIN.md): Konbit refuses it
    at bind, with why and what to run instead, rather than half work on it."""
    ganache = "Ganache/v7.9.2/EthereumJS TestRPC/v7.9.2/ethereum-js"
    why = unsupported(ganache)
    assert why is not None and "resent raw transaction" in why
    real = rpc_call(anvil.url, "web3_clientVersion")
    assert "anvil" in real.lower() and unsupported(real) is None
    assert unsupported("HardhatNetwork/2.22.0/@ethereumjs/vm/7.0.0") is None

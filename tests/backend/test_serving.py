"""``konbit run``'s processes: web workers on one port, the background beside them.

Each test starts a real ``konbit run`` (its own Anvil, SQLite) in its own process group and
looks at its process tree through ``/proc``: only processes it started are signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from konbit.chain.local import free_port
from konbit.connection_balance import MARGIN
from konbit.processes import Supervised
from konbit.serving import bind


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def children(self) -> dict[int, str]:
        """pid -> command line of the live children of ``konbit run``."""
        found = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z" and int(fields[1]) == self.process.pid:
                found[int(stat.parent.name)] = cmdline
        return found

    def workers(self) -> list[int]:
        """The spawned children (web workers and the background process)."""
        return sorted(pid for pid, cmd in self.children().items() if "spawn_main" in cmd)

    def answers(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _until(condition, timeout: float, what: str, run: Run) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}:\n{run.tail()}"
        time.sleep(0.1)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONBIT_")}
    env.update(
        KONBIT_DATA_DIR=str(tmp_path / "data"),
        KONBIT_PORT=str(port),
        KONBIT_CHAIN_PORT=str(free_port()),
        KONBIT_WEB_WORKERS="2",
        KONBIT_LOG_LEVEL="INFO",
    )
    log = tmp_path / "konbit-run.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "konbit.cli", "run"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = Run(process, f"http://127.0.0.1:{port}", log)
    try:
        _until(lambda: process.poll() is not None or started.answers(), 180, "no answer", started)
        assert process.poll() is None, started.tail()
        # Two web workers and the background process, and both workers listening.
        _until(lambda: len(started.workers()) == 3, 30, "not 3 children", started)
        _until(lambda: _listening_on(port) == 2, 30, "not 2 listening", started)
        yield started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # The chain runs in its own session: a parent killed outright leaves it running.
        pid_file = tmp_path / "data" / "chain" / "anvil.pid"
        if pid_file.exists():
            chain = int(pid_file.read_text().strip())
            if _alive(chain):
                os.killpg(chain, signal.SIGKILL)


def test_a_crashed_web_worker_is_started_again_and_the_port_keeps_answering(run: Run) -> None:
    before = run.workers()
    victim = before[-1]
    os.kill(victim, signal.SIGKILL)
    # Served throughout by the other worker, on its own listening socket.
    for _ in range(20):
        assert run.answers(), run.tail()
    _until(lambda: victim not in run.workers() and len(run.workers()) == 3, 30, "no restart", run)
    assert "starting it again" in run.log.read_text()
    # Right away, while the new worker starts: its socket takes connections only once it
    # can serve them (uvicorn listens after the app's startup), so none waits on it.
    for _ in range(20):
        assert run.answers(), run.tail()


def _sockets_on(port: int, state: str, net: str = "/proc/net") -> list[str]:
    """Inodes of the TCP sockets on local ``port`` in ``state`` (hex, as /proc shows it:
    01 established, 0A listening), from the ``tcp`` and ``tcp6`` tables under ``net``."""
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"{net}/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.append(fields[9])
    return found


def _established_to(port: int, pid: int) -> int:
    """Connections to ``port`` that process ``pid`` holds (from /proc: its socket inodes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return sum(inode in inodes for inode in _sockets_on(port, "01", f"/proc/{pid}/net"))


def _listening_on(port: int) -> int:
    """Sockets listening on ``port`` (the web workers' own, once they have started)."""
    return len(_sockets_on(port, "0A"))


def test_a_burst_of_new_connections_is_spread_over_the_web_workers(run: Run) -> None:
    port = int(run.url.rsplit(":", 1)[1])
    # Forty clients connect at once, as the bench's do.
    burst = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(40)]
    try:

        def held() -> list[int]:
            return sorted(_established_to(port, pid) for pid in run.workers())

        # Counted once accepted, before any request (a worker over its share closes some).
        _until(lambda: sum(held()) == 40, 10, f"not all accepted: {held()}", run)
        spread = held()
        for sock in burst:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: konbit\r\n\r\n")
        for sock in burst:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200"), run.tail()
    finally:
        for sock in burst:
            sock.close()
    # Two web workers hold them, the background process none. The kernel hashes each
    # connection to a worker: fewer than 10 of 40 on one has odds under 1 in 1,000.
    assert spread[0] == 0 and min(spread[1:]) >= 10, spread


def test_keep_alive_connections_end_up_evenly_shared(run: Run) -> None:
    port = int(run.url.rsplit(":", 1)[1])
    clients = [httpx.Client(base_url=run.url, timeout=10) for _ in range(40)]
    try:
        for _ in range(8):  # a worker over its share closes some; they connect again
            for client in clients:
                assert client.get("/healthz").status_code == 200
        held = sorted(_established_to(port, pid) for pid in run.workers())
    finally:
        for client in clients:
            client.close()
    # 20 each, give or take the margin (a connection closed by the last round is not back).
    assert held[0] == 0 and 38 <= sum(held) <= 40 and held[2] <= 20 + MARGIN, held


def test_sigterm_stops_every_process_and_frees_the_port(run: Run) -> None:
    children = run.workers()
    port = int(run.url.rsplit(":", 1)[1])
    os.kill(run.process.pid, signal.SIGTERM)  # only the parent, as systemd or docker would
    run.process.wait(60)
    for pid in children:
        _until(lambda pid=pid: not _alive(pid), 10, f"{pid} still running", run)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_workers_of_a_killed_server_stop_and_a_new_server_gets_the_port(run: Run) -> None:
    children = run.workers()
    port = int(run.url.rsplit(":", 1)[1])
    os.kill(run.process.pid, signal.SIGKILL)  # no chance to stop its children
    run.process.wait(10)
    for pid in children:
        _until(lambda pid=pid: not _alive(pid), 15, f"orphan {pid} still running", run)
    # bind() waits while the port is held (a restart right after a crash), then has it.
    bind("127.0.0.1", port, patience=5).close()


def test_bind_waits_for_a_held_port_and_then_gives_up_with_the_os_error() -> None:
    held = bind("127.0.0.1", 0)
    held.listen()
    port = held.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(OSError, match="in use"):
        bind("127.0.0.1", port, patience=0.5)
    assert time.monotonic() - started >= 0.5
    held.close()
    bind("127.0.0.1", port, patience=5).close()


def test_a_child_that_keeps_crashing_on_start_is_given_up() -> None:
    stopped = threading.Event()
    child = Supervised("crasher", os._exit, (3,), check_every=0.05, on_stopped=stopped.set)
    child.start()
    try:
        assert stopped.wait(60), "still restarting"
        assert child.failed
    finally:
        child.stop(timeout=5)


def test_konbit_run_with_workers_stops_with_the_message_of_a_setting_the_app_refuses(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONBIT_")}
    env.update(
        KONBIT_DATA_DIR=str(tmp_path / "data"),
        KONBIT_PORT=str(free_port()),
        KONBIT_CHAIN_PORT=str(free_port()),
        KONBIT_WEB_WORKERS="2",
        KONBIT_GTINS="1:09506000134353",  # a wrong check digit (…352 is right)
    )
    done = subprocess.run(
        [sys.executable, "-m", "konbit.cli", "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    assert done.returncode != 0
    assert "KONBIT_GTINS" in done.stderr + done.stdout, done.stderr[-2000:]
    # It stopped the chain it started (and so the children it spawned are gone too).
    pid_file = tmp_path / "data" / "chain" / "anvil.pid"
    if pid_file.exists():
        assert not _alive(int(pid_file.read_text().strip()))

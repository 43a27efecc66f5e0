"""Lifecycle of the managed local Anvil node.

The node runs from ``node_modules`` (npm ``@foundry-rs/anvil``'s native binary) with
``--state`` so its chain survives restarts. Anvil dumps that state when it exits cleanly
and every ``state_interval`` seconds (``konbit`` passes ``KONBIT_CHAIN_STATE_INTERVAL``, 1 by
default; each dump rewrites the whole chain), so it is always stopped with SIGTERM and
then waited for. A node killed outright restarts from its last dump, that many seconds
behind, and the outbox sends the lost transactions again (see ``konbit.outbox.worker``).
A node already listening on the configured port is attached to, never started twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from konbit.paths import NODE_BIN

log = logging.getLogger(__name__)


class ChainError(RuntimeError):
    """The local chain could not be started, reached or stopped."""


@dataclass(frozen=True)
class ChainStatus:
    running: bool
    url: str
    pid: int | None = None
    chain_id: int | None = None
    block_number: int | None = None
    managed: bool = False


def _npm_native_anvil() -> str:
    """The native binary the npm package ships for this platform.

    ``node_modules/.bin/anvil`` is a Node.js wrapper that starts this binary as its child:
    a SIGKILL to the wrapper would leave the node running, so the binary is run directly.
    """
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = {"windows": "win32"}.get(platform.system().lower(), platform.system().lower())
    name = "anvil.exe" if system == "win32" else "anvil"
    return str(NODE_BIN.parent / "@foundry-rs" / f"anvil-{system}-{machine}" / "bin" / name)


def anvil_binary() -> str:
    """The Anvil executable: ``KONBIT_ANVIL_BIN``, the project's npm one, or one on PATH."""
    candidates = [
        os.environ.get("KONBIT_ANVIL_BIN"),
        _npm_native_anvil(),
        str(NODE_BIN / "anvil"),
        shutil.which("anvil"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise ChainError("anvil not found: run `npm ci` in the project root (see README)")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def rpc_call(url: str, method: str, params: list[Any] | None = None, timeout: float = 2.0) -> Any:
    """One JSON-RPC call with the standard library, for health checks before web3 is set up."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    if not url.startswith(("http://", "https://")):
        raise ChainError(f"not an HTTP JSON-RPC URL: {url}")
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body.encode(), headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        reply = json.loads(response.read())
    if "error" in reply:
        raise ChainError(f"{method} failed: {reply['error'].get('message', reply['error'])}")
    return reply["result"]


def probe(url: str) -> tuple[int, int] | None:
    """(chain id, latest block) of the node at ``url``, or None when nothing answers."""
    try:
        chain_id = int(rpc_call(url, "eth_chainId"), 16)
        block = int(rpc_call(url, "eth_blockNumber"), 16)
    except (OSError, urllib.error.URLError, ValueError, ChainError):
        return None
    return chain_id, block


def _load_json(path: Path) -> Any:
    """The JSON document in ``path``, or None when it is missing, empty or cut short."""
    try:
        with path.open("rb") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _header_int(block: Any, name: str) -> int | None:
    try:
        return int(block["header"][name], 16)
    except (KeyError, TypeError, ValueError):
        return None


class LocalChain:
    """A persistent Anvil node under ``state_dir``, started, attached to or stopped."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8545,
        chain_id: int = 31337,
        state_interval: int = 5,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port or free_port(host)
        self.chain_id = chain_id
        self.state_interval = state_interval
        self.extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "anvil.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "anvil.log"

    @property
    def backup_file(self) -> Path:
        """The last state dump known to be whole (see :meth:`backup_state`)."""
        return self.state_dir / "state.good.json"

    def command(self) -> list[str]:
        return [
            anvil_binary(),
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--state", str(self.state_file),
            "--state-interval", str(self.state_interval),
            # Anvil otherwise writes every old block's whole state under
            # ~/.foundry/anvil/tmp and leaves it behind when killed: gigabytes per
            # long-lived node. Recent states stay in memory, which is all we query.
            "--max-persisted-states", "0",
            *self.extra_args,
        ]  # fmt: skip

    def status(self) -> ChainStatus:
        found = probe(self.url)
        pid = self._recorded_pid()
        if found is None:
            return ChainStatus(running=False, url=self.url, pid=None)
        return ChainStatus(
            running=True,
            url=self.url,
            pid=pid,
            chain_id=found[0],
            block_number=found[1],
            managed=pid is not None,
        )

    def start(self, *, timeout: float = 30.0, detach: bool = False) -> ChainStatus:
        """Start Anvil, or attach when a node already answers on the port.

        ``detach`` starts it in its own session, so that it outlives this process and a
        signal to this process group (Ctrl-C, a ``kill -9`` of the group) does not reach it
        (``konbit chain up``, ``konbit run``).
        """
        current = self.status()
        if not current.running and self._recorded_pid() is not None:
            current = self._await_recorded(timeout)  # ours, still loading its state: wait
        if current.running:
            if current.chain_id != self.chain_id:
                raise ChainError(
                    f"a node with chain id {current.chain_id} already listens on {self.url}; "
                    f"expected {self.chain_id}"
                )
            return current
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._check_state_file()
        output = self.log_file.open("ab")
        try:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        finally:
            output.close()
        self.pid_file.write_text(str(self._process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ChainError(
                    f"anvil exited with code {self._process.returncode}; see {self.log_file}"
                )
            found = self.status()
            if found.running:
                return found
            time.sleep(0.05)
        self.stop()
        raise ChainError(f"anvil did not answer on {self.url} within {timeout:.0f}s")

    def _await_recorded(self, timeout: float) -> ChainStatus:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._recorded_pid() is not None:
            found = self.status()
            if found.running:
                return found
            time.sleep(0.05)
        return self.status()

    def _check_state_file(self) -> None:
        """Make sure Anvil can load the state file.

        Anvil writes its dump in place (truncate, then write): a node killed while writing
        leaves it empty or cut short, and then would not start. Such a file is set aside
        (``state.broken.json``) and the last dump known to be whole (``state.good.json``,
        see :meth:`backup_state`) takes its place; without one the chain starts afresh.
        """
        if not self.state_file.exists():
            return
        state = _load_json(self.state_file)
        if state is not None:
            self._keep_first_genesis(state)
            return
        broken = self.state_dir / "state.broken.json"
        os.replace(self.state_file, broken)
        state = _load_json(self.backup_file) if self.backup_file.exists() else None
        if state is not None:
            shutil.copyfile(self.backup_file, self.state_file)
            self._keep_first_genesis(state)
            log.warning(
                "the chain's state file was cut short (the node was killed while writing it; "
                "kept as %s); starting from the last whole dump %s",
                broken,
                self.backup_file,
            )
        else:
            log.error(
                "the chain's state file was cut short (kept as %s) and no whole dump is "
                "left: the chain starts afresh",
                broken,
            )

    def _keep_first_genesis(self, state: Any) -> None:
        """Drop the genesis blocks Anvil adds to its dump after each restart.

        A node started from a dump makes a genesis block of its own (timestamped at its
        start) and dumps it beside the loaded one; loaded again, the dump may then answer
        with that one as block 0: another genesis hash, which the mirror takes for a reset
        (another chain). The chain's genesis is the first: the others are removed.
        """
        blocks = state.get("blocks") if isinstance(state, dict) else None
        if not isinstance(blocks, list):
            return
        geneses = [b for b in blocks if _header_int(b, "number") == 0]
        if len(geneses) < 2:
            return
        first = min(geneses, key=lambda b: _header_int(b, "timestamp") or 0)
        state["blocks"] = [b for b in blocks if b is first or _header_int(b, "number") != 0]
        partial = self.state_dir / "state.json.partial"
        with partial.open("w") as out:
            json.dump(state, out, separators=(",", ":"))
        os.replace(partial, self.state_file)
        log.info("dropped %d genesis blocks Anvil added on restarts", len(geneses) - 1)

    def backup_state(self, *, settled: float = 0.5) -> bool:
        """Copy the state file to ``state.good.json`` when it is whole; True if copied.

        Call it while the node runs: a dump that has not changed for ``settled`` seconds
        was finished by a live node, so it is whole (checked again after the copy).
        """
        try:
            before = self.state_file.stat()
        except FileNotFoundError:
            return False
        if before.st_size == 0 or time.time() - before.st_mtime < settled:
            return False
        try:
            backup = self.backup_file.stat()
        except FileNotFoundError:
            backup = None
        if backup is not None and backup.st_mtime >= before.st_mtime:
            return False  # nothing new
        partial = self.state_dir / "state.good.json.partial"
        shutil.copyfile(self.state_file, partial)
        after = self.state_file.stat()
        if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
            partial.unlink(missing_ok=True)
            return False  # a dump began meanwhile: next time
        os.utime(partial, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(partial, self.backup_file)
        return True

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop the node this directory started (SIGTERM, then wait so the state is dumped).

        Returns False when no node recorded here was running.
        """
        own = self._process
        if own is not None and own.poll() is not None:
            own = self._process = None  # ours died; another may have been started since
        pid = own.pid if own is not None else self._recorded_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(pid):
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            raise ChainError(f"anvil (pid {pid}) did not stop within {timeout:.0f}s; killed")
        self._process = None
        self.pid_file.unlink(missing_ok=True)
        return True

    def _alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie child of some other parent still accepts signal 0; look at its state.
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return False
        return True

    def recorded_pid(self) -> int | None:
        """The pid of the node this directory started, if it is alive."""
        return self._recorded_pid()

    def _recorded_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._alive(pid) else None

    def __enter__(self) -> LocalChain:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

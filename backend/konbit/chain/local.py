"""Lifecycle of the managed local Anvil node.

The node runs from ``node_modules`` (npm ``@foundry-rs/anvil``) with ``--state`` so its
chain survives restarts. Anvil dumps that state when it exits cleanly and every
``state_interval`` seconds, so it is always stopped with SIGTERM and then waited for.
A node already listening on the configured port is attached to, never started twice.
"""

from __future__ import annotations

import contextlib
import json
import os
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


def anvil_binary() -> str:
    """The Anvil executable: ``KONBIT_ANVIL_BIN``, the project's npm one, or one on PATH."""
    candidates = [
        os.environ.get("KONBIT_ANVIL_BIN"),
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

    def command(self) -> list[str]:
        return [
            anvil_binary(),
            "--host", self.host,
            "--port", str(self.port),
            "--chain-id", str(self.chain_id),
            "--state", str(self.state_file),
            "--state-interval", str(self.state_interval),
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

        ``detach`` lets the node outlive this process (``konbit chain up``).
        """
        current = self.status()
        if current.running:
            if current.chain_id != self.chain_id:
                raise ChainError(
                    f"a node with chain id {current.chain_id} already listens on {self.url}; "
                    f"expected {self.chain_id}"
                )
            return current
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # A state file that a killed node left empty or half-written cannot be loaded.
        if self.state_file.exists() and self.state_file.stat().st_size == 0:
            self.state_file.unlink()
        log = self.log_file.open("ab")
        try:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=detach,
            )
        finally:
            log.close()
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

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop the node this directory started (SIGTERM, then wait so the state is dumped).

        Returns False when no node recorded here was running.
        """
        pid = self._process.pid if self._process else self._recorded_pid()
        if pid is None:
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

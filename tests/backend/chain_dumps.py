"""Killing a local chain in a test without losing what the test needs of its state."""

from __future__ import annotations

import json
import time

from konbit.chain.local import LocalChain


def kept_through_block(chain: LocalChain, block: int, timeout: float = 60) -> None:
    """Wait until the chain's last whole dump (:meth:`LocalChain.backup_state`, as
    `konbit run` takes every few seconds) holds ``block``. Anvil rewrites its dump in place:
    a SIGKILL can cut the one being written, and a restart then falls back to this one."""
    deadline = time.monotonic() + timeout
    while True:
        chain.backup_state(settled=0.2)
        try:
            state = json.loads(chain.backup_file.read_text())
            top = max(int(b["header"]["number"], 16) for b in state["blocks"])
        except (OSError, ValueError, KeyError):
            top = -1
        if top >= block:
            return
        assert time.monotonic() < deadline, f"no whole dump holds block {block}"
        time.sleep(0.1)

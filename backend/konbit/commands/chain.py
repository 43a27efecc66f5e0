"""``konbit chain up|down|status|reset``: the local Anvil chain and this database's view of it.

Also what ``konbit run`` uses to keep its managed chain: :func:`local_chain`,
:class:`ChainKeeper` and the marker file that says ``konbit run`` started the node.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from konbit.chain.local import ChainStatus, LocalChain, probe
from konbit.settings import Settings

log = logging.getLogger("konbit")


#: In the chain's folder while ``konbit run`` owns the node it started (stopped on exit).
RUN_OWNER_FILE = "started-by-run"


def local_chain(settings: Settings) -> LocalChain:
    return LocalChain(
        settings.chain_dir,
        host=settings.chain_host,
        port=settings.chain_port,
        chain_id=settings.chain_id,
        state_interval=settings.chain_state_interval,
    )


class ChainKeeper:
    """Keeps ``konbit run``'s managed chain up while it serves.

    The node runs in its own session, so that a crash of the server (even a ``kill -9`` of
    its whole process group) leaves the chain running. When the node dies, the keeper
    starts it again from its state file (up to a second behind: the outbox sends the lost
    transactions again); meanwhile it keeps a copy of the last whole state dump.
    """

    def __init__(self, chain: LocalChain, *, every: float = 1.0, backup_every: float = 5.0):
        self.chain = chain
        self.every = every
        self.backup_every = backup_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chain-keeper", daemon=True)

    def start(self) -> ChainKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        next_backup = 0.0
        down_since: float | None = None
        while not self._stop.wait(self.every):
            try:
                if self.chain.status().running:
                    down_since = None
                    if time.monotonic() >= next_backup:
                        next_backup = time.monotonic() + self.backup_every
                        self.chain.backup_state()
                    continue
                if self.chain.recorded_pid() is not None:
                    continue  # alive but not answering yet (loading its state, busy)
                down_since = down_since or time.monotonic()
                log.warning("the local chain at %s is down; starting it again", self.chain.url)
                status = self.chain.start(detach=True)
                log.warning(
                    "local chain started again at block %s (down %.1fs)",
                    status.block_number,
                    time.monotonic() - down_since,
                )
                down_since = None
            except Exception:
                log.exception("chain keeper: could not start the local chain; retrying")


def cmd_chain(settings: Settings, args: argparse.Namespace) -> int:
    chain = local_chain(settings)
    if args.action == "up":
        status = chain.start(detach=True)
        # Brought up by hand: it stays up when a `konbit run` attached to it stops.
        (chain.state_dir / RUN_OWNER_FILE).unlink(missing_ok=True)
        print(
            f"chain up: {status.url} chain id {status.chain_id}, block {status.block_number}"
            f"{'' if status.managed else ' (attached to a node already listening)'}"
        )
        return 0
    if args.action == "down":
        stopped = chain.stop()
        print(
            "chain down: state saved to " + str(chain.state_file)
            if stopped
            else "chain down: no managed chain was running"
        )
        return 0
    if args.action == "reset":
        return _chain_reset(settings, chain, args)
    if settings.managed_chain:
        status = chain.status()
    else:
        found = probe(settings.effective_rpc_url)
        status = ChainStatus(
            running=found is not None,
            url=settings.shown_rpc_url,
            chain_id=found[0] if found else None,
            block_number=found[1] if found else None,
        )
    if not status.running:
        print(f"chain: not running ({status.url})")
        return 3
    print(
        f"chain: running at {status.url}, chain id {status.chain_id}, "
        f"block {status.block_number}, pid {status.pid or 'not managed here'}"
    )
    _print_chain_report(settings)
    return 0


def _print_chain_report(settings: Settings) -> None:
    """The genesis, the deployments and the accounts of ``konbit chain status``."""
    from konbit.chain.contracts import AddressBook
    from konbit.db.migrate import upgrade
    from konbit.runtime import Runtime
    from konbit.services.chains import report

    runtime = Runtime(settings)
    try:
        upgrade(runtime.engine)
        found = report(runtime)
        path = AddressBook.path(settings.data_dir, found.chain.chain_id, found.chain.genesis)
    finally:
        runtime.close()
    print(f"genesis: {found.chain.genesis}")
    if found.book is None:
        print(f"deployments: none for this chain ({path}); `konbit deploy` or `konbit run`")
    else:
        print(f"deployments ({path}, from block {found.book.deploy_block}):")
        for name, address in found.book.addresses.items():
            print(f"  {name:16s} {address}")
    print(f"accounts ({len(found.accounts)} in the vault):")
    for account in found.accounts:
        roles = (
            ", ".join(account.roles) or "-"
            if found.mirrored
            else "? (the mirror has not read this chain)"
        )
        print(f"  {account.address}  {account.kind:12s} {account.label or '':16s} roles: {roles}")
    for other in found.others:
        print(f"also in this database: {other}")


def _chain_reset(settings: Settings, chain: LocalChain, args: argparse.Namespace) -> int:
    """``konbit chain reset``: a new local chain and a clean namespace for it."""
    from konbit.db.migrate import upgrade
    from konbit.runtime import Runtime
    from konbit.services.chains import bind, forget, known_chains
    from konbit.settings import LOCAL_CHAIN_IDS

    url, shown = settings.effective_rpc_url, settings.shown_rpc_url
    found = probe(url)
    if settings.managed_chain:
        chain_id = found[0] if found else settings.chain_id
    elif found is None:
        print(f"konbit chain reset: no node answers at {shown}", file=sys.stderr)
        return 1
    else:
        chain_id = found[0]
    local = chain_id in LOCAL_CHAIN_IDS
    if not local and not args.forget:
        print(
            f"konbit chain reset: chain {chain_id} at {shown} is not a local chain (ids "
            f"{', '.join(map(str, sorted(LOCAL_CHAIN_IDS)))}): konbit cannot make it anew. "
            "If the chain this database followed is gone for good, `konbit chain reset "
            "--forget` forgets its state here and follows the node's chain.",
            file=sys.stderr,
        )
        return 1
    managed = settings.managed_chain and local
    if found is not None and managed and chain.recorded_pid() is None:
        print(
            f"konbit chain reset: a node konbit did not start listens on {shown}: stop it, "
            "or set KONBIT_RPC_URL to it",
            file=sys.stderr,
        )
        return 1
    what = (
        f"stop the local chain in {chain.state_dir}, delete its blocks and start a new one; "
        "forget its contracts and transactions in this database"
        if managed
        else f"forget this database's contracts and transactions for the chain at {shown}"
        + ("" if local else " and for the chain it followed before")
    )
    if not args.yes:
        try:
            answer = input(f"konbit chain reset will {what}. Go on? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("chain reset: nothing done")
            return 1
    old: str | None = None
    if found is not None:
        runtime = Runtime(settings)
        try:
            old = runtime.genesis
        finally:
            runtime.close()
    if managed:
        chain.stop()
        for name in (
            "state.json",
            "state.good.json",
            "state.broken.json",
            "state.json.partial",
            "demo-season",
            RUN_OWNER_FILE,
        ):
            (chain.state_dir / name).unlink(missing_ok=True)
        chain.start(detach=True)
    runtime = Runtime(settings)
    try:
        upgrade(runtime.engine)
        gone = [old] if old is not None else []
        if not local:  # --forget: the chain(s) this database followed before
            gone = [n.genesis_hash for n in known_chains(runtime) if n.genesis_hash != old]
        for genesis in gone:
            forget(runtime, genesis)
        bind(runtime)
        print(
            f"chain reset: chain {runtime.chain_id} at {url}, genesis {runtime.genesis}; "
            "a clean namespace"
            + (" on a new local chain (running; `konbit chain down` stops it)" if managed else "")
            + ": the next `konbit run` or `konbit deploy` deploys afresh"
        )
    finally:
        runtime.close()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``chain`` to the ``konbit`` parser."""
    chain = subparsers.add_parser(
        "chain",
        help="manage the local Anvil chain: up, down, status (genesis, contracts, accounts), "
        "reset (a new local chain and a clean namespace; stop `konbit run` first)",
    )
    chain.add_argument("action", choices=["up", "down", "status", "reset"])
    chain.add_argument("--yes", action="store_true", help="reset: do not ask for confirmation")
    chain.add_argument(
        "--forget",
        action="store_true",
        help="reset on a non-local chain: forget the state of the chain this database "
        "followed before, and follow the node's",
    )
    chain.set_defaults(func=cmd_chain)

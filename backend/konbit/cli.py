"""The ``konbit`` command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

from konbit.chain.local import ChainError, ChainStatus, LocalChain, probe
from konbit.commands.mirror import register as register_mirror
from konbit.commands.vault import register as register_vault
from konbit.settings import Settings, SettingsError
from konbit.sms.cli import register as register_sms

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
            url=settings.effective_rpc_url,
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

    url = settings.effective_rpc_url
    found = probe(url)
    if settings.managed_chain:
        chain_id = found[0] if found else settings.chain_id
    elif found is None:
        print(f"konbit chain reset: no node answers at {url}", file=sys.stderr)
        return 1
    else:
        chain_id = found[0]
    local = chain_id in LOCAL_CHAIN_IDS
    if not local and not args.forget:
        print(
            f"konbit chain reset: chain {chain_id} at {url} is not a local chain (ids "
            f"{', '.join(map(str, sorted(LOCAL_CHAIN_IDS)))}): konbit cannot make it anew. "
            "If the chain this database followed is gone for good, `konbit chain reset "
            "--forget` forgets its state here and follows the node's chain.",
            file=sys.stderr,
        )
        return 1
    managed = settings.managed_chain and local
    if found is not None and managed and chain.recorded_pid() is None:
        print(
            f"konbit chain reset: a node konbit did not start listens on {url}: stop it, "
            "or set KONBIT_RPC_URL to it",
            file=sys.stderr,
        )
        return 1
    what = (
        f"stop the local chain in {chain.state_dir}, delete its blocks and start a new one; "
        "forget its contracts and transactions in this database"
        if managed
        else f"forget this database's contracts and transactions for the chain at {url}"
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


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    from konbit.db.engine import make_engine
    from konbit.db.migrate import upgrade

    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    print(f"database at revision head ({engine.url.get_backend_name()})")
    return 0


def _say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """``konbit run`` plus, once the API answers, the demo season (first time only)."""
    import threading

    def season() -> None:
        import httpx

        from konbit.demo import run_once
        from konbit.runtime import Runtime

        url = f"http://{settings.host}:{settings.port}"
        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        runtime = Runtime(settings)
        try:
            run_once(
                url,
                runtime,
                settings.chain_dir / "demo-season",
                say=lambda m: print(f"demo: {m}", flush=True),
            )
        except Exception as exc:
            log.error("the demo season stopped: %s", exc)
        finally:
            runtime.close()

    threading.Thread(target=season, name="demo", daemon=True).start()
    return cmd_run(settings, args)


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from konbit.background import BackgroundProcess
    from konbit.db.migrate import upgrade
    from konbit.runtime import Runtime
    from konbit.server import create_app
    from konbit.services.chains import bind
    from konbit.services.deploy import deploy
    from konbit.settings import LOCAL_CHAIN_IDS

    # SIGTERM (docker stop, systemd, kill) ends like Ctrl-C, through the `finally` below
    # that stops the chain: it runs in its own session, so the signal does not reach it.
    # (uvicorn serves SIGTERM itself, then raises it again once it has shut down.)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    chain = local_chain(settings) if settings.managed_chain else None
    owned = False
    keeper: ChainKeeper | None = None
    background: BackgroundProcess | None = None
    if chain is not None:
        marker = chain.state_dir / RUN_OWNER_FILE
        already = chain.status().running
        # In its own session: a crash of this process (group) leaves the chain running.
        status = chain.start(detach=True)
        if not already:
            marker.write_text("konbit run\n")
        # Ours to stop on exit: started now, or by a `konbit run` that crashed.
        owned = status.managed and marker.exists()
        log.info(
            "local chain %s at %s (chain id %s, block %s)",
            "attached" if already else "started",
            status.url,
            status.chain_id,
            status.block_number,
        )
        keeper = ChainKeeper(chain).start()
    try:
        runtime = Runtime(settings)
        try:
            upgrade(runtime.engine)
            bind(runtime)  # this chain's namespace; another non-local chain: refused
            if runtime.chain_id in LOCAL_CHAIN_IDS:
                deploy(runtime, progress=lambda line: log.info("deploy: %s", line.strip()))
        finally:
            runtime.close()
        # The outbox worker, the mirror and the SMS sender run in a process of their own:
        # requests then never wait for them to release the interpreter lock.
        background = BackgroundProcess(settings).start()
        log.info("serving on http://%s:%s (API docs at /docs)", settings.host, settings.port)
        uvicorn.run(
            create_app(settings, background=False, background_elsewhere=True),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            # A line per request costs the server more than many requests do; errors and
            # refusals are logged by the app itself.
            access_log=settings.log_level.upper() == "DEBUG",
        )
    finally:
        if background is not None:
            background.stop()
        if keeper is not None:
            keeper.stop()
        if chain is not None and owned:
            chain.stop()
            (chain.state_dir / RUN_OWNER_FILE).unlink(missing_ok=True)
            log.info("local chain stopped; state saved to %s", chain.state_file)
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    import threading

    from konbit.runtime import Runtime

    runtime = Runtime(settings)
    worker = runtime.worker()
    try:
        if args.drain:
            worker.drain(timeout=args.timeout)
            print("outbox drained: nothing pending")
        else:
            worker.run_forever(threading.Event())
    finally:
        worker.close()
        runtime.close()
    return 0


def cmd_deploy(settings: Settings, args: argparse.Namespace) -> int:
    from konbit.db.migrate import upgrade
    from konbit.runtime import Runtime
    from konbit.services.deploy import deploy

    runtime = Runtime(settings)
    try:
        upgrade(runtime.engine)
        print(f"deploying to chain {runtime.chain_id} at {settings.effective_rpc_url}")
        deploy(runtime, local=True if args.local else None)
    finally:
        runtime.close()
    return 0


def cmd_apikey(settings: Settings, args: argparse.Namespace) -> int:
    from konbit.access.keys import issue_key
    from konbit.db.migrate import upgrade
    from konbit.roles import Role
    from konbit.runtime import OPERATOR_KIND, Runtime

    runtime = Runtime(settings)
    try:
        upgrade(runtime.engine)
        operator = runtime.operator() or runtime.vault.create_account(OPERATOR_KIND, "operator")
        row, secret = issue_key(runtime.engine, operator, Role.OPERATOR, args.label)
    finally:
        runtime.close()
    print(f"operator API key {row.prefix}... (id {row.id}) for {operator}; shown once:")
    print(secret)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="konbit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    chain = sub.add_parser(
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

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    db.set_defaults(func=cmd_db)

    deploy = sub.add_parser("deploy", help="deploy and wire the contracts (idempotent)")
    deploy.add_argument(
        "--local",
        action="store_true",
        help="treat the chain as local (test stablecoin, funded operator)",
    )
    deploy.set_defaults(func=cmd_deploy)

    apikey = sub.add_parser("apikey", help="issue the operator's API key (bootstrap)")
    apikey.add_argument("--label", default="cli")
    apikey.set_defaults(func=cmd_apikey)

    worker = sub.add_parser("worker", help="run the outbox worker alone")
    worker.add_argument("--drain", action="store_true", help="exit once nothing is pending")
    worker.add_argument("--timeout", type=float, default=300.0, help="--drain gives up after")
    worker.set_defaults(func=cmd_worker)

    run = sub.add_parser("run", help="serve the API (starts the local chain when none is set)")
    run.add_argument("--host", default=None)
    run.add_argument("--port", type=int, default=None)
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="the local ledger with its demo")
    demo.add_argument("--host", default=None)
    demo.add_argument("--port", type=int, default=None)
    demo.set_defaults(func=cmd_demo)
    register_vault(sub)
    register_mirror(sub)
    register_sms(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load(host=getattr(args, "host", None), port=getattr(args, "port", None))
    except SettingsError as exc:
        print(f"konbit: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    func: Callable[[Settings, argparse.Namespace], int] = args.func
    try:
        settings.private_data_dir()
        return func(settings, args)
    except ChainError as exc:
        print(f"konbit: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

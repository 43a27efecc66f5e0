"""The ``konbit`` command line."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

from konbit import logs
from konbit.chain.local import ChainError
from konbit.commands.chain import RUN_OWNER_FILE, ChainKeeper, local_chain
from konbit.commands.chain import register as register_chain
from konbit.commands.mirror import register as register_mirror
from konbit.commands.vault import register as register_vault
from konbit.settings import Settings, SettingsError, unknown_variables
from konbit.sms.cli import register as register_sms

log = logging.getLogger("konbit")


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
    from konbit import serving
    from konbit.db.migrate import upgrade
    from konbit.runtime import Runtime
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

    def bind_the_chain() -> str:
        runtime = Runtime(settings)
        try:
            upgrade(runtime.engine)
            bind(runtime)  # this chain's namespace; another non-local chain: refused
            if runtime.chain_id in LOCAL_CHAIN_IDS:
                deploy(runtime, progress=lambda line: log.info("deploy: %s", line.strip()))
            return runtime.genesis
        finally:
            runtime.close()

    try:
        genesis = bind_the_chain()
        while (replaced := serving.serve(settings, genesis)) is not None:
            # A developer restarted their node (or a managed one lost its state): serve the
            # chain that is there now, as a new `konbit run` would.
            log.warning(
                "the node at %s is another chain now (genesis %s -> %s): binding it",
                settings.shown_rpc_url,
                genesis,
                replaced,
            )
            genesis = bind_the_chain()
    finally:
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

    from konbit.outbox.wake import WakeListener
    from konbit.runtime import Runtime

    runtime = Runtime(settings)
    worker = runtime.worker()
    try:
        if args.drain:
            worker.drain(timeout=args.timeout)
            print("outbox drained: nothing pending")
        else:
            with WakeListener(settings.effective_database_url) as wake:
                worker.run_forever(threading.Event(), wake=wake)
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
        print(f"deploying to chain {runtime.chain_id} at {settings.shown_rpc_url}")
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
    register_chain(sub)
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
    for warning in unknown_variables():
        print(f"konbit: warning: {warning}", file=sys.stderr)
    logs.configure(settings.log_level)
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

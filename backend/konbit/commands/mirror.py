"""``konbit mirror [--rebuild] [--once]`` and ``konbit verify``."""

from __future__ import annotations

import argparse
import sys
import threading

from konbit.settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``mirror`` and ``verify`` to the ``konbit`` parser."""
    mirror = subparsers.add_parser(
        "mirror", help="project chain events into SQL (follows the chain until stopped)"
    )
    mirror.add_argument(
        "--rebuild",
        action="store_true",
        help="drop the projection and replay it from the deployment block",
    )
    mirror.add_argument("--once", action="store_true", help="exit once caught up")
    mirror.set_defaults(func=cmd_mirror)

    verify = subparsers.add_parser(
        "verify",
        help="compare the SQL projection with contract state and the outbox with the chain "
        "(receipts, nonces); non-zero on mismatch",
    )
    verify.set_defaults(func=cmd_verify)


def cmd_mirror(settings: Settings, args: argparse.Namespace) -> int:
    from konbit.db.migrate import upgrade
    from konbit.mirror.indexer import Mirror, MirrorError
    from konbit.runtime import Runtime

    runtime = Runtime(settings)
    try:
        upgrade(runtime.engine)
        mirror = Mirror.from_runtime(runtime)
        result = mirror.rebuild() if args.rebuild else mirror.sync()
        print(
            f"mirror: {'rebuilt, ' if args.rebuild else ''}{result.events} events in "
            f"{result.chunks} chunks, {result.reorgs} reorgs; at block {result.last_block}"
        )
        if not args.once:
            mirror.follow(threading.Event(), settings.mirror_poll_seconds)
    except MirrorError as exc:
        print(f"konbit mirror: {exc}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    return 0


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    """The projection against contract state, and the outbox against the chain."""
    from konbit.mirror.verify import verify
    from konbit.outbox.audit import audit
    from konbit.runtime import Runtime

    runtime = Runtime(settings)
    try:
        report = verify(runtime)
        outbox = audit(runtime.engine, runtime.rpc)
    finally:
        runtime.close()
    mismatches = [*report.mismatches, *outbox.mismatches]
    for mismatch in mismatches:
        print(f"MISMATCH {mismatch}")
    checked = ", ".join(f"{n} {k}" for k, n in {**report.checked, **outbox.checked}.items())
    verdict = "OK" if not mismatches else f"{len(mismatches)} mismatches"
    print(f"verify at block {report.block}: {checked}: {verdict}")
    return 0 if not mismatches else 1

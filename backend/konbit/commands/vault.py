"""``konbit vault new | list | rotate | export``: custodial keys from the command line."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from konbit.settings import Settings
from konbit.vault.errors import VaultError

if TYPE_CHECKING:
    from konbit.vault.service import Vault

Command = Callable[[Settings, argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``vault`` and its actions to the ``konbit`` parser."""
    vault = subparsers.add_parser("vault", help="custodial keys: new, list, rotate, export")
    actions = vault.add_subparsers(dest="vault_action", required=True)

    new = actions.add_parser("new", help="create a custodial account; prints its address")
    new.add_argument("--kind", default="farmer", help="farmer, cooperative, operator, ...")
    new.add_argument("--label", help="an operator's handle (no personal data)")
    new.set_defaults(func=_command(cmd_new))

    listing = actions.add_parser("list", help="addresses, kinds and key versions (never keys)")
    listing.set_defaults(func=_command(cmd_list))

    rotate = actions.add_parser("rotate", help="re-wrap every data key under a new master key")
    rotate.add_argument("--batch-size", type=int, default=500, help="accounts per transaction")
    rotate.set_defaults(func=_command(cmd_rotate))

    # No abbreviations: `--passphrase SECRET` must fail, not be read as --passphrase-file.
    export = actions.add_parser(
        "export", help="write a keystore v3 JSON for a user leaving", allow_abbrev=False
    )
    export.add_argument("address")
    export.add_argument("--out", type=Path, help="file to create (mode 0600); default stdout")
    export.add_argument(
        "--passphrase-file", type=Path, help="read the passphrase from this file, not a prompt"
    )
    export.set_defaults(func=_command(cmd_export))


def _command(func: Callable[[Vault, argparse.Namespace], int]) -> Command:
    def run(settings: Settings, args: argparse.Namespace) -> int:
        from konbit.db.engine import make_engine
        from konbit.vault.service import Vault

        engine = make_engine(settings.effective_database_url)
        try:
            return func(Vault(engine, settings), args)
        except VaultError as exc:
            print(f"konbit vault: {exc}", file=sys.stderr)
            return 1
        finally:
            engine.dispose()

    return run


def cmd_new(vault: Vault, args: argparse.Namespace) -> int:
    print(vault.create_account(args.kind, args.label))
    return 0


def cmd_list(vault: Vault, args: argparse.Namespace) -> int:
    accounts = vault.accounts()
    for a in accounts:
        created = a.created_at.strftime("%Y-%m-%d %H:%M")
        print(f"{a.address}  {a.kind:<12} v{a.key_version:<3} {created}  {a.label or ''}".rstrip())
    print(f"{len(accounts)} accounts; new keys wrapped under master key v{vault.key_version}")
    return 0


def cmd_rotate(vault: Vault, args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise VaultError("--batch-size must be at least 1")

    def progress(done: int, total: int) -> None:
        print(f"re-wrapped {done}/{total}", flush=True)

    report = vault.rotate(batch_size=args.batch_size, progress=progress)
    print(
        f"{'resumed rotation' if report.resumed else 'rotation'} complete: "
        f"{report.rewrapped} accounts re-wrapped, all under master key v{report.to_version}"
    )
    if report.dropped_versions:
        print(f"dropped master key versions {report.dropped_versions} from the keyring file")
    elif len(report.remaining_versions) > 1:
        print(
            f"now keep only version {report.to_version} in KONBIT_VAULT_MASTER_KEY "
            f"(remove versions {[v for v in report.remaining_versions if v != report.to_version]})"
            " and restart every Konbit process"
        )
    return 0


def cmd_export(vault: Vault, args: argparse.Namespace) -> int:
    vault.account(args.address)  # fail on an unknown address before asking for a passphrase
    if args.passphrase_file is not None:
        try:
            passphrase = args.passphrase_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise VaultError(f"cannot read {args.passphrase_file}: {exc.strerror}") from None
    else:
        passphrase = getpass.getpass("Keystore passphrase: ")
        if getpass.getpass("Repeat the passphrase: ") != passphrase:
            raise VaultError("the passphrases differ")
    keystore = vault.export_keystore(args.address, passphrase)
    if args.out is None:
        print(json.dumps(keystore))
    else:
        _create_private_file(args.out, keystore)
        print(f"keystore for {args.address} written to {args.out}", file=sys.stderr)
    return 0


def _create_private_file(path: Path, doc: dict[str, Any]) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise VaultError(f"{path} exists; not overwriting it") from None
    except OSError as exc:
        raise VaultError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle)
        handle.write("\n")

"""Chains are known by their genesis block, not only by their id.

Every local node (Anvil, Ganache, Hardhat) says chain id 31337 or 1337, so the chain id
alone cannot tell a developer's chains apart: brownie starts a fresh Anvil for each
``brownie run``, ``konbit chain reset`` makes a new one. What a database and a data
directory hold for a chain (the address book, the outbox's transactions and nonces, the
mirror's projection) is therefore bound to the chain *instance*, named by the hash of its
genesis block (``eth_getBlockByNumber("0x0").hash``):

* ``chain_namespace`` lists the instances the database has state for; the ``active`` one
  is the instance it followed last.
* Each outbox row says the instance it is for (``outbox_tx.chain_genesis``, set when it
  is recorded, or when it is signed for rows that did not say), and a worker only
  handles the rows of the instance its node runs (konbit.outbox.worker);
  ``outbox_sender.next_nonce`` counts on the instance named beside it (another: the worker
  counts again from the chain). The old chain's pending rows thus never block the new
  one, and are never sent to it; back on the old chain, they go on.
* The address book is ``deployments/<chainId>-<16 hex digits of the genesis>.json``: a new
  instance finds none and deploys afresh; an old one finds its own again.
* The mirror's projection is derived data and holds one instance (its cursor records the
  genesis): moving to another instance clears it, and the mirror reads the new one from
  its deployment block (``konbit mirror --rebuild`` does the same by hand).

:func:`bind` makes the node's instance the active one; ``konbit run``, ``konbit deploy``
and the deploy routine (hence ``brownie run scripts/deploy.py``) call it first. On a
**local** chain (konbit.settings.LOCAL_CHAIN_IDS) a new instance simply gets a new
namespace. On any other chain a new instance in a database that has state for another is
refused (:class:`ChainMismatch`, naming both): a real network does not change its
genesis, so that is a misconfigured URL or database; ``konbit chain reset --forget``
forgets the old instance's state here when it is really gone.

A chain that lost blocks but kept its genesis (a node killed before its state dump, a
reorg) is the same instance: the outbox sends the lost transactions again, as before.

State recorded before genesis hashes were kept (rows without a chain, ``<chainId>.json``)
goes to the node's instance when the mirror's cursor names it or the block of the first
transaction the outbox recorded is on the node; otherwise to the instance the cursor names,
or to an ``unknown`` one (a chain no longer reachable).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from konbit.chain.contracts import AddressBook
from konbit.chain.local import ChainError
from konbit.chain.rpc import RpcError
from konbit.db.models import ChainNamespace
from konbit.mirror.indexer import clear_mirror
from konbit.mirror.models import MirrorCursor, RoleGrant
from konbit.outbox.models import OutboxSender, OutboxTx
from konbit.runtime import Runtime
from konbit.settings import LOCAL_CHAIN_IDS

log = logging.getLogger(__name__)

#: The namespace of state recorded before genesis hashes were kept, of a chain now gone.
UNKNOWN_GENESIS = "unknown"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ChainRef:
    """One chain instance: its id and the hash of its genesis block."""

    chain_id: int
    genesis: str

    @property
    def local(self) -> bool:
        return self.chain_id in LOCAL_CHAIN_IDS

    def __str__(self) -> str:
        return f"chain {self.chain_id} with genesis {self.genesis}"


class ChainMismatch(ChainError):
    """The node runs another instance than the one this (non-local) database follows."""

    def __init__(self, bound: ChainRef, node: ChainRef, url: str, database: str) -> None:
        local = ", ".join(str(i) for i in sorted(LOCAL_CHAIN_IDS))
        super().__init__(
            f"the database {database} holds the state of {bound}, but the node at {url} "
            f"is {node}: another chain. Konbit keeps separate chains apart by itself only "
            f"on local chains (chain ids {local}). Point KONBIT_RPC_URL at the node of the "
            "first chain, or use another data directory / database (KONBIT_DATA_DIR, "
            "KONBIT_DATABASE_URL); to start over on this chain and forget the state of "
            "the first one here (its address book, transactions, projection), run "
            "`konbit chain reset --forget`."
        )
        self.bound = bound
        self.node = node


#: Nodes Konbit does not run on, by the name in their ``web3_clientVersion``, and why.
UNSUPPORTED_NODES = {
    "ganache": (
        "Ganache (archived upstream since 2023) executes a resent raw transaction again"
        " (seen with nonce 0), which breaks the outbox's guarantee that each write lands"
        " once, and has no"
        " eth_simulateV1 to judge a write whole before it is recorded"
    ),
}


class UnsupportedNode(ChainError):
    """The node is of a kind Konbit refuses to write to (see ``UNSUPPORTED_NODES``)."""


def unsupported(client_version: str) -> str | None:
    """Why Konbit refuses a node whose ``web3_clientVersion`` is ``client_version``."""
    name = client_version.lower()
    return next((why for key, why in UNSUPPORTED_NODES.items() if key in name), None)


def check_node(runtime: Runtime) -> None:
    """Raise :class:`UnsupportedNode` for a node Konbit cannot keep its promises on."""
    try:
        client = str(runtime.rpc.call("web3_clientVersion"))
    except RpcError:
        return  # a node that does not say: judged by what it does
    why = unsupported(client)
    if why is not None:
        raise UnsupportedNode(
            f"the node at {runtime.settings.shown_rpc_url} is {client}: {why}. Use"
            " Anvil: `konbit run` without KONBIT_RPC_URL starts one from the project's npm"
            " tools (or run `npx anvil --chain-id 31337` and point KONBIT_RPC_URL at it)."
        )


@dataclass(frozen=True)
class Binding:
    """What :func:`bind` found and did."""

    chain: ChainRef
    #: The instance the database followed before, when it moved to another one.
    previous: ChainRef | None = None
    #: A namespace was made for the node's instance.
    created: bool = False


def node_chain(runtime: Runtime) -> ChainRef:
    return ChainRef(runtime.chain_id, runtime.genesis)


def bind(runtime: Runtime) -> Binding:
    """Make the node's chain instance the one the database follows (see the module doc).

    Raises :class:`ChainMismatch` for a new instance of a non-local chain when the
    database has state for another, :class:`UnsupportedNode` for a node Konbit refuses.
    Needs the schema at head (``konbit db upgrade``).
    """
    check_node(runtime)
    chain = node_chain(runtime)
    with Session(runtime.engine) as session:
        known = {n.genesis_hash: n for n in session.exec(select(ChainNamespace)).all()}
        active = next((n for n in known.values() if n.active), None)
        if active is not None and active.genesis_hash == chain.genesis:
            return Binding(chain)
        if not known:
            owner = _owner_of_unbound_state(session, runtime, chain)
            if owner is None:  # a new database, or its state is this chain's
                _move_legacy_book(runtime, chain.chain_id, chain.genesis)
                session.execute(
                    update(OutboxTx)
                    .where(col(OutboxTx.chain_genesis).is_(None))
                    .values(chain_genesis=chain.genesis)
                )
            else:
                _move_legacy_book(runtime, chain.chain_id, owner)
                active = ChainNamespace(genesis_hash=owner, chain_id=chain.chain_id, active=True)
                session.add(active)
                known = {owner: active}
        previous = ChainRef(active.chain_id, active.genesis_hash) if active is not None else None
        if known and chain.genesis not in known and not chain.local:
            bound = previous or next(ChainRef(n.chain_id, n.genesis_hash) for n in known.values())
            raise ChainMismatch(
                bound,
                chain,
                runtime.settings.shown_rpc_url,
                _database(runtime),
            )
        if active is not None:
            # Rows that named no chain were recorded for the one followed until now.
            session.execute(
                update(OutboxTx)
                .where(col(OutboxTx.chain_genesis).is_(None))
                .values(chain_genesis=active.genesis_hash)
            )
            active.active = False
            session.add(active)
        namespace = known.get(chain.genesis)
        created = namespace is None
        if namespace is None:
            namespace = ChainNamespace(genesis_hash=chain.genesis, chain_id=chain.chain_id)
        namespace.active = True
        namespace.bound_at = _now()
        session.add(namespace)
        cursor = session.exec(select(MirrorCursor)).first()
        if cursor is not None and cursor.genesis_hash != chain.genesis:
            clear_mirror(session.connection())  # another chain's projection: read anew
        session.commit()
    if previous is not None:
        log.warning(
            "the node is another chain than the one this database followed (%s -> %s); "
            "%s namespace for it",
            previous,
            chain,
            "a new" if created else "back to the",
        )
    return Binding(chain, previous, created)


def forget(runtime: Runtime, genesis: str) -> int:
    """Drop what the database and the data directory hold for the instance ``genesis``:
    its outbox rows, nonces, address book, namespace and (if it is that chain's) the
    mirror's projection. Returns the outbox rows deleted."""
    with Session(runtime.engine) as session:
        namespace = session.get(ChainNamespace, genesis)
        chain_id = namespace.chain_id if namespace is not None else runtime.chain_id
        if namespace is not None and namespace.active:
            session.execute(  # rows naming no chain are the active one's
                update(OutboxTx)
                .where(col(OutboxTx.chain_genesis).is_(None))
                .values(chain_genesis=genesis)
            )
        deleted = session.execute(delete(OutboxTx).where(col(OutboxTx.chain_genesis) == genesis))
        session.execute(
            update(OutboxSender)
            .where(col(OutboxSender.chain_genesis) == genesis)
            .values(next_nonce=None, chain_genesis=None)
        )
        if namespace is not None:
            session.delete(namespace)
        cursor = session.exec(select(MirrorCursor)).first()
        if cursor is not None and cursor.genesis_hash == genesis:
            clear_mirror(session.connection())
        session.commit()
    AddressBook.path(runtime.settings.data_dir, chain_id, genesis).unlink(missing_ok=True)
    return int(deleted.rowcount or 0)  # type: ignore[attr-defined]


def known_chains(runtime: Runtime) -> list[ChainNamespace]:
    with Session(runtime.engine) as session:
        return list(
            session.exec(select(ChainNamespace).order_by(col(ChainNamespace.bound_at))).all()
        )


@dataclass(frozen=True)
class AccountRoles:
    address: str
    kind: str
    label: str | None
    roles: tuple[str, ...] = ()


@dataclass
class ChainReport:
    """``konbit chain status``: the node's instance and what the database holds for it."""

    chain: ChainRef
    book: AddressBook | None
    accounts: list[AccountRoles] = field(default_factory=list)
    #: The mirror's projection is of this instance (so the roles are known).
    mirrored: bool = False
    #: The other instances the database has state for.
    others: list[ChainRef] = field(default_factory=list)


def report(runtime: Runtime) -> ChainReport:
    """The genesis, the deployments and the custodial accounts with their roles."""
    chain = node_chain(runtime)
    roles: dict[str, list[str]] = {}
    with Session(runtime.engine) as session:
        cursor = session.exec(select(MirrorCursor)).first()
        mirrored = cursor is not None and cursor.genesis_hash == chain.genesis
        if mirrored:
            for grant in session.exec(select(RoleGrant).where(col(RoleGrant.active))):
                roles.setdefault(grant.account.lower(), []).append(grant.role_name)
    accounts = [
        AccountRoles(a.address, a.kind, a.label, tuple(sorted(roles.get(a.address.lower(), []))))
        for a in runtime.vault.accounts()
    ]
    others = [
        ChainRef(n.chain_id, n.genesis_hash)
        for n in known_chains(runtime)
        if n.genesis_hash != chain.genesis
    ]
    return ChainReport(chain, runtime.address_book(), accounts, mirrored, others)


# ---------------------------------------------------------------------- before genesis


def _owner_of_unbound_state(session: Session, runtime: Runtime, chain: ChainRef) -> str | None:
    """Whose is the state recorded before chains were told apart: None when it is the
    node's chain's (or there is none), else the genesis of its chain (or UNKNOWN_GENESIS)."""
    cursor = session.exec(
        select(MirrorCursor).where(MirrorCursor.chain_id == chain.chain_id)
    ).first()
    if cursor is not None:
        return None if cursor.genesis_hash == chain.genesis else cursor.genesis_hash
    first = session.exec(
        select(OutboxTx.block_number, OutboxTx.block_hash)
        .where(col(OutboxTx.chain_genesis).is_(None))
        .where(col(OutboxTx.block_hash).is_not(None))
        .where(col(OutboxTx.block_number).is_not(None))
        .order_by(col(OutboxTx.block_number))
        .limit(1)
    ).first()
    if first is None:
        return None
    number, block_hash = first
    block = runtime.rpc.call("eth_getBlockByNumber", hex(int(number or 0)), False)
    if block is not None and str(block["hash"]).lower() == str(block_hash).lower():
        return None  # the first block it recorded is on the node: the same chain
    return UNKNOWN_GENESIS


def _move_legacy_book(runtime: Runtime, chain_id: int, genesis: str) -> None:
    """``deployments/<chainId>.json`` (before genesis hashes were kept) becomes ``genesis``'s."""
    data_dir = runtime.settings.data_dir
    old = AddressBook.path(data_dir, chain_id, None)
    new = AddressBook.path(data_dir, chain_id, genesis)
    if old.is_file() and not new.exists():
        old.replace(new)


def _database(runtime: Runtime) -> str:
    url = runtime.engine.url
    if url.get_backend_name() == "sqlite":
        return str(Path(url.database or ""))
    return url.render_as_string(hide_password=True)

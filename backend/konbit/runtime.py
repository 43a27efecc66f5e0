"""The long-lived parts of a backend process, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from web3 import Web3

from konbit.chain.connection import connect
from konbit.chain.contracts import AddressBook, KonbitContracts, default_error_decoder
from konbit.chain.rpc import RpcClient
from konbit.db.engine import make_engine
from konbit.outbox.budget import GasBudget
from konbit.outbox.sponsor import TopUpSponsor
from konbit.outbox.wake import Nudge
from konbit.outbox.worker import OutboxWorker
from konbit.services.errors import ChainUnavailable
from konbit.settings import Settings
from konbit.vault.service import Vault

if TYPE_CHECKING:
    from konbit.services.lot_batches import LotBatcher

OPERATOR_KIND = "operator"


@dataclass
class Runtime:
    """Engine, chain connection, vault and contracts of one backend process."""

    settings: Settings
    engine: Engine = field(init=False)
    w3: Web3 = field(init=False)
    _contracts: tuple[Any, KonbitContracts] | None = field(init=False, default=None, repr=False)
    #: Custodial addresses already found in the vault (writes check their sender each time).
    custodial_seen: set[str] = field(init=False, default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.settings.private_data_dir()
        self.engine = make_engine(self.settings.effective_database_url)
        self.w3 = connect(self.settings)

    @cached_property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    @cached_property
    def genesis(self) -> str:
        """Hash of the node's genesis block: which chain instance this is (two local chains
        share a chain id; see konbit.services.chains)."""
        return self.rpc.genesis()

    @cached_property
    def nudge_outbox(self) -> Nudge:
        """Call once a write's rows are committed: the outbox worker on this host signs
        them now rather than at its next poll (konbit.outbox.wake)."""
        return Nudge(self.settings.effective_database_url)

    @cached_property
    def vault(self) -> Vault:
        return Vault(self.engine, self.settings)

    def operator(self) -> str | None:
        """The operator's custodial address (deployer, gas sponsor), if there is one."""
        for account in self.vault.accounts():
            if account.kind == OPERATOR_KIND:
                return account.address
        return None

    @cached_property
    def operator_address(self) -> str | None:
        return self.operator()

    def address_book(self) -> AddressBook | None:
        return AddressBook.load(self.settings.data_dir, self.chain_id, self.genesis)

    def contracts(self) -> KonbitContracts:
        """The deployed contracts; one client per address book (rebuilt when it changes)."""
        path = AddressBook.path(self.settings.data_dir, self.chain_id, self.genesis)
        try:
            stamp = path.stat()
            version = (stamp.st_mtime_ns, stamp.st_size)
        except FileNotFoundError:
            version = None
        cached = self._contracts
        if cached is not None and version is not None and cached[0] == version:
            return cached[1]
        book = self.address_book()
        if book is None:
            # A 503 to a client: also what a web worker sees in the seconds after the node was
            # restarted as a new chain, before `konbit run` has deployed on it.
            raise ChainUnavailable(
                f"nothing deployed on chain {self.chain_id} (genesis {self.genesis}): run"
                " `konbit deploy`, or retry in a few seconds if `konbit run` is deploying"
            )
        contracts = KonbitContracts(self.w3, book)
        self._contracts = (version, contracts)
        return contracts

    @cached_property
    def lot_batcher(self) -> LotBatcher:
        """Records the lots of concurrent requests as one transaction per cooperative."""
        from konbit.services.lot_batches import LotBatcher  # services build on the runtime

        return LotBatcher(self)

    @cached_property
    def gas_budget(self) -> GasBudget:
        return GasBudget(self.engine, self.settings.gas_budget_wei_per_day)

    @cached_property
    def rpc(self) -> RpcClient:
        return RpcClient(self.settings.effective_rpc_url)

    def worker(self, **options: Any) -> OutboxWorker:
        operator = self.operator()
        sponsor = (
            TopUpSponsor(
                self.engine,
                self.rpc,
                operator,
                topup_wei=self.settings.gas_topup_wei,
                budget=self.gas_budget,
                chain_genesis=self.genesis,
            )
            if operator is not None and self.settings.gas_topup_wei > 0
            else None
        )
        return OutboxWorker(
            self.engine, self.rpc, self.vault, default_error_decoder(), sponsor=sponsor, **options
        )

    def close(self) -> None:
        if "lot_batcher" in self.__dict__:
            self.lot_batcher.close()
        self.engine.dispose()

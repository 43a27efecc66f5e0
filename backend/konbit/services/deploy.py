"""The one deploy routine: contracts, their wiring, and on local chains the test stablecoin.

Used by ``konbit deploy``, by ``konbit run`` on first start, by ``scripts/deploy.py``
(brownie) and by the tests. Every transaction goes through the outbox, signed by the
operator's custodial account, so a deploy interrupted at any point is resumed by running
it again: contracts whose recorded address still holds the code recorded for the same
creation code are kept, and each wiring call is skipped when the chain already has it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address
from sqlmodel import Session, select

from konbit.chain.contracts import AddressBook, KonbitContracts, load_artifact
from konbit.chain.rpc import RpcClient, RpcError
from konbit.db.models import Deployment
from konbit.outbox.models import OutboxTx, TxStatus
from konbit.outbox.service import submit
from konbit.roles import SYSTEM_ROLES
from konbit.runtime import OPERATOR_KIND, Runtime
from konbit.services.chains import bind
from konbit.settings import LOCAL_CHAIN_IDS

#: Native coin given to the operator on a local chain (it pays gas and sponsors users).
LOCAL_OPERATOR_BALANCE = 10**24


class DeployError(RuntimeError):
    """A deploy step failed; the message names the step and the decoded revert."""


@dataclass(frozen=True)
class Ref:
    """A constructor argument that is the address of a contract deployed earlier."""

    contract: str


OPERATOR = object()  #: a constructor argument that is the operator's address


@dataclass(frozen=True)
class Step:
    contract: str
    args: tuple[Any, ...] = ()


#: Deploy order and constructor arguments.
PLAN: tuple[Step, ...] = (
    Step("ClusterRegistry", (OPERATOR,)),
    Step("Traceability", (Ref("ClusterRegistry"),)),
    Step("SaleEscrow", (Ref("ClusterRegistry"), Ref("Traceability"))),
    Step("LogisticsMarket", (Ref("ClusterRegistry"), Ref("Traceability"), Ref("SaleEscrow"))),
    Step("FinanceMarket", (Ref("ClusterRegistry"), Ref("SaleEscrow"))),
)
LOCAL_PLAN: tuple[Step, ...] = (Step("TestStablecoin"),)
# The roles the system contracts hold are konbit.roles.SYSTEM_ROLES; ``_wire`` grants them.

Progress = Callable[[str], None]


def init_code(contract: str, args: Sequence[Any]) -> str:
    """Creation code with ABI-encoded constructor arguments, as 0x-hex."""
    artifact = load_artifact(contract)
    constructor = next((i for i in artifact.abi if i.get("type") == "constructor"), None)
    types = [p["type"] for p in constructor["inputs"]] if constructor else []
    if len(types) != len(args):
        raise DeployError(f"{contract} takes {len(types)} constructor arguments, got {len(args)}")
    return artifact.bytecode + abi_encode(types, list(args)).hex()


def _hash(hex_data: str) -> str:
    return "0x" + keccak(hexstr=hex_data).hex()


#: How each development node sets an account's balance: Anvil (Hardhat's name too),
#: Hardhat, Ganache.
SET_BALANCE_METHODS = ("anvil_setBalance", "hardhat_setBalance", "evm_setAccountBalance")


def set_local_balance(rpc: RpcClient, account: str, wei: int) -> None:
    """Give ``account`` ``wei`` on a development node, whichever kind it is."""
    for method in SET_BALANCE_METHODS:
        try:
            rpc.call(method, account, hex(wei))
            return
        except RpcError as exc:
            if not exc.method_unknown:
                raise
    raise DeployError(
        "this development node sets no balances (none of "
        + ", ".join(SET_BALANCE_METHODS)
        + f"): fund the operator {account} yourself"
    )


def ensure_operator(runtime: Runtime, *, local: bool) -> str:
    """The operator's custodial address; created on first use, funded on local chains."""
    operator = runtime.operator() or runtime.vault.create_account(OPERATOR_KIND, "operator")
    balance = int(runtime.rpc.call("eth_getBalance", operator, "latest"), 16)
    if local and balance < LOCAL_OPERATOR_BALANCE // 2:
        set_local_balance(runtime.rpc, operator, LOCAL_OPERATOR_BALANCE)
    elif balance == 0:
        raise DeployError(f"the operator {operator} has no native coin to pay gas: fund it first")
    return operator


class Deployer:
    def __init__(self, runtime: Runtime, operator: str, progress: Progress) -> None:
        self.runtime = runtime
        self.operator = operator
        self.progress = progress
        # Keys name the chain instance: after a chain reset the same deploy is a new one.
        self.key_prefix = f"deploy:{runtime.chain_id}:{runtime.genesis[:18]}"

    def send(self, key: str, *, data: str, to: str | None = None) -> OutboxTx:
        with Session(self.runtime.engine) as session:
            submit(
                session,
                key=f"{self.key_prefix}:{key}",
                sender=self.operator,
                to=to,
                data=data,
                function=key.split(":")[0],
                chain_genesis=self.runtime.genesis,
            )
        worker = self.runtime.worker(threads=1)
        try:
            worker.drain(timeout=120)
        finally:
            worker.close()
        with Session(self.runtime.engine) as session:
            row = session.exec(
                select(OutboxTx).where(OutboxTx.idempotency_key == f"{self.key_prefix}:{key}")
            ).one()
        if row.status != TxStatus.MINED:
            raise DeployError(f"{key} failed: {row.error_name} {row.error_args_json or ''}")
        return row

    def code_hash(self, address: str) -> str:
        return _hash(self.runtime.rpc.call("eth_getCode", address, "latest"))


def deploy(
    runtime: Runtime, *, local: bool | None = None, progress: Progress = print
) -> AddressBook:
    """Deploy what is missing or changed, wire it, and record the address book.

    The database is first bound to the node's chain (``konbit.services.chains.bind``): on
    another local chain with the same id it starts a namespace of its own (a fresh deploy),
    on another non-local chain it refuses (``ChainMismatch``).
    """
    bind(runtime)
    local = runtime.chain_id in LOCAL_CHAIN_IDS if local is None else local
    operator = ensure_operator(runtime, local=local)
    deployer = Deployer(runtime, operator, progress)
    previous = runtime.address_book() or AddressBook(runtime.chain_id, {}, genesis=runtime.genesis)
    addresses: dict[str, str] = {}
    code_hashes: dict[str, str] = {}
    init_hashes: dict[str, str] = {}
    blocks: list[int] = []

    for step in (*PLAN, *LOCAL_PLAN) if local else PLAN:
        args = [
            operator if a is OPERATOR else addresses[a.contract] if isinstance(a, Ref) else a
            for a in step.args
        ]
        code = init_code(step.contract, args)
        init_hash = _hash(code)
        recorded = previous.addresses.get(step.contract)
        if (
            recorded
            and previous.init_hashes.get(step.contract) == init_hash
            and previous.code_hashes.get(step.contract) == deployer.code_hash(recorded)
        ):
            addresses[step.contract] = recorded
            progress(f"  {step.contract:16s} kept     {recorded}")
        else:
            # Naming the address it replaces makes a redeploy over a vanished contract a new
            # transaction, while a rerun after a crash finds the one it already sent.
            replaces = recorded or "new"
            row = deployer.send(f"create:{step.contract}:{init_hash[:18]}:{replaces}", data=code)
            assert row.contract_address is not None
            addresses[step.contract] = to_checksum_address(row.contract_address)
            blocks.append(row.block_number or 0)
            progress(
                f"  {step.contract:16s} deployed {row.contract_address} (block {row.block_number})"
            )
        code_hashes[step.contract] = deployer.code_hash(addresses[step.contract])
        init_hashes[step.contract] = init_hash

    kept_any = any(previous.addresses.get(name) == address for name, address in addresses.items())
    first_blocks = [*blocks, previous.deploy_block] if kept_any else blocks
    deploy_block = min(first_blocks, default=0)  # the mirror reads events from here
    book = AddressBook(
        runtime.chain_id, addresses, deploy_block, code_hashes, init_hashes, runtime.genesis
    )
    contracts = KonbitContracts(runtime.w3, book)
    _wire(deployer, contracts, local=local)
    book.save(runtime.settings.data_dir)
    _record(runtime, book)
    path = AddressBook.path(runtime.settings.data_dir, book.chain_id, book.genesis)
    progress(f"address book: {path}")
    return book


def _wire(deployer: Deployer, contracts: KonbitContracts, *, local: bool) -> None:
    registry = contracts.registry
    for role_name, holder in SYSTEM_ROLES:
        role = getattr(registry.functions, role_name)().call()
        address = contracts.book.address(holder)
        if not registry.functions.hasRole(role, address).call():
            _, data = contracts.encode_call("ClusterRegistry", "grantRole", [role, address])
            deployer.send(f"grant:{role_name}:{address}", to=registry.address, data=data)
            deployer.progress(f"  granted {role_name} to {holder}")
    if local:
        coin = contracts.book.address("TestStablecoin")
        escrow = contracts.escrow
        if not escrow.functions.allowedTokens(coin).call():
            _, data = contracts.encode_call("SaleEscrow", "setTokenAllowed", [coin, True])
            deployer.send(f"allow-token:{escrow.address}:{coin}", to=escrow.address, data=data)
            deployer.progress("  allowed TestStablecoin in SaleEscrow")


def _record(runtime: Runtime, book: AddressBook) -> None:
    """Mirror the address book into the ``deployment`` table."""
    with Session(runtime.engine) as session:
        existing = {
            d.contract: d
            for d in session.exec(select(Deployment).where(Deployment.chain_id == book.chain_id))
        }
        for name, address in book.addresses.items():
            row = existing.get(name) or Deployment(
                chain_id=book.chain_id, contract=name, address=address, code_hash=""
            )
            row.address = address
            row.code_hash = book.code_hashes.get(name, "")
            row.block_number = book.deploy_block
            session.add(row)
        session.commit()


def deploy_with_brownie(containers: Any, admin: Any) -> dict[str, Any]:
    """The same plan and wiring executed by brownie (its contract tests and gas report).

    ``containers`` is the loaded brownie project; ``admin`` a brownie account that becomes
    the operator. Returns the deployed brownie contracts by name.
    """
    tx = {"from": admin}
    deployed: dict[str, Any] = {}
    for step in (*PLAN, *LOCAL_PLAN):
        args = [
            admin if a is OPERATOR else deployed[a.contract] if isinstance(a, Ref) else a
            for a in step.args
        ]
        deployed[step.contract] = getattr(containers, step.contract).deploy(*args, tx)
    registry = deployed["ClusterRegistry"]
    for role_name, holder in SYSTEM_ROLES:
        registry.grantRole(getattr(registry, role_name)(), deployed[holder], tx)
    deployed["SaleEscrow"].setTokenAllowed(deployed["TestStablecoin"], True, tx)
    return deployed

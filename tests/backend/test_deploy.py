"""The one deploy routine on a real Anvil: deploys, wires, records, and is idempotent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from konbit.chain.contracts import AddressBook, KonbitContracts
from konbit.chain.local import LocalChain
from konbit.db.migrate import upgrade
from konbit.db.models import Deployment
from konbit.outbox.models import OutboxTx
from konbit.roles import SYSTEM_ROLES
from konbit.runtime import Runtime
from konbit.services.deploy import PLAN, deploy
from konbit.settings import Settings


@pytest.fixture
def runtime(anvil: LocalChain, database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings.load(
        env_file=None, environ={}, data_dir=tmp_path, rpc_url=anvil.url, database_url=database_url
    )
    rt = Runtime(settings)
    upgrade(rt.engine)
    yield rt
    rt.close()


def _tx_count(rt: Runtime) -> int:
    with Session(rt.engine) as s:
        return len(s.exec(select(OutboxTx.id)).all())


def test_deploy_wires_everything_and_records_the_book(runtime: Runtime) -> None:
    lines: list[str] = []
    book = deploy(runtime, progress=lines.append)
    assert set(book.addresses) == {s.contract for s in PLAN} | {"TestStablecoin"}
    for address in book.addresses.values():
        assert runtime.w3.eth.get_code(address) not in (b"", None)
    contracts = KonbitContracts(runtime.w3, book)
    registry = contracts.registry
    operator = runtime.operator()
    assert registry.functions.hasRole(registry.functions.OPERATOR_ROLE().call(), operator).call()
    for role_name, holder in SYSTEM_ROLES:
        role = getattr(registry.functions, role_name)().call()
        assert registry.functions.hasRole(role, book.address(holder)).call()
    assert contracts.escrow.functions.allowedTokens(book.address("TestStablecoin")).call()
    path = AddressBook.path(runtime.settings.data_dir, runtime.chain_id, runtime.genesis)
    on_disk = json.loads(path.read_text())
    assert on_disk["contracts"] == book.addresses
    with Session(runtime.engine) as s:
        rows = {d.contract: d.address for d in s.exec(select(Deployment))}
    assert rows == book.addresses
    assert any("deployed" in line for line in lines)


def test_second_deploy_sends_nothing(runtime: Runtime) -> None:
    first = deploy(runtime, progress=lambda _: None)
    sent = _tx_count(runtime)
    second = deploy(runtime, progress=lambda _: None)
    assert second.addresses == first.addresses
    assert _tx_count(runtime) == sent


def test_missing_code_redeploys_that_contract_and_its_dependents(runtime: Runtime) -> None:
    first = deploy(runtime, progress=lambda _: None)
    runtime.rpc.call("anvil_setCode", first.address("SaleEscrow"), "0x")
    second = deploy(runtime, progress=lambda _: None)
    for kept in ("ClusterRegistry", "Traceability"):
        assert second.address(kept) == first.address(kept)
    for redeployed in ("SaleEscrow", "LogisticsMarket", "FinanceMarket"):
        assert second.address(redeployed) != first.address(redeployed)
    contracts = KonbitContracts(runtime.w3, second)
    role = contracts.registry.functions.ESCROW_CONTRACT_ROLE().call()
    assert contracts.registry.functions.hasRole(role, second.address("SaleEscrow")).call()

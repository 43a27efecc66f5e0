"""The mirror on a real Anvil, on SQLite and PostgreSQL: season, rebuild, reorg, reset, verify."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from konbit.chain.local import LocalChain, free_port
from konbit.cli import main as konbit_main
from konbit.db.migrate import upgrade
from konbit.mirror.decoding import DecodeWorker
from konbit.mirror.indexer import Mirror, MirrorError, MirrorResetError
from konbit.mirror.models import (
    PROJECTION_MODELS,
    Advance,
    AdvanceStatus,
    ChainEvent,
    Consignment,
    ConsignmentStatus,
    Lot,
    LotStatus,
    OrderStatus,
    Payout,
    ReleaseState,
    SaleOrder,
    TransportJob,
)
from konbit.mirror.verify import verify
from konbit.profiles.models import FarmerProfile
from konbit.runtime import Runtime
from konbit.services.deploy import deploy
from konbit.services.season import DAY, DOCUMENTS, DOCUMENTS_HASH, USD, Season
from konbit.settings import Settings


def make_runtime(url: str, database_url: str, data_dir: Path) -> Runtime:
    settings = Settings.load(
        env_file=None, environ={}, data_dir=data_dir, rpc_url=url, database_url=database_url
    )
    rt = Runtime(settings)
    upgrade(rt.engine)
    return rt


@pytest.fixture
def runtime(anvil: LocalChain, database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(anvil.url, database_url, tmp_path)
    deploy(rt, progress=lambda _: None)
    yield rt
    rt.close()


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table, ordered by primary key: what a rebuild must reproduce."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for model in PROJECTION_MODELS:
            table = model.__table__  # type: ignore[attr-defined]
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())


def test_season_projection_equals_rebuild_and_verifies(runtime: Runtime) -> None:
    # Followed through the decode worker, rebuilt in one process: both must agree.
    mirror = Mirror.from_runtime(runtime, chunk_blocks=7, adaptive=False, parallel=True)
    stop = threading.Event()
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            mirror.follow(stop, 0.02)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        season = Season(runtime)
        season.full()
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors
    result = Mirror.from_runtime(runtime).sync()
    assert result.last_block == runtime.w3.eth.block_number
    followed = dump(runtime.engine)

    with Session(runtime.engine) as s:
        orders = {o.order_id: o for o in s.exec(select(SaleOrder)).scalars()}
        assert {k: o.status for k, o in orders.items()} == {
            1: OrderStatus.SETTLED,
            2: OrderStatus.REFUNDED,
            3: OrderStatus.SETTLED,
            4: OrderStatus.CANCELLED,
            5: OrderStatus.SETTLED,
            6: OrderStatus.SETTLED,
            7: OrderStatus.SETTLED,
        }
        # release agents: released (financier-funded, window waived), refused, lapsed
        released, refused, lapsed = orders[5], orders[6], orders[7]
        assert released.funder == released.funding_financier == season.financier
        assert released.funding_agreement_hash == "0x" + "a9" * 32
        assert released.release_agent == season.financier and released.agent_window == DAY
        assert released.release_state == ReleaseState.RELEASED and released.release_waived
        assert released.documents_hash == "0x" + DOCUMENTS_HASH.hex()
        assert json.loads(released.document_hashes or "[]") == ["0x" + d.hex() for d in DOCUMENTS]
        assert released.documents_presented_by == season.coop
        assert released.agent_deadline == (released.dispute_until or 0) + DAY
        assert refused.release_state == ReleaseState.REFUSED and refused.funder == season.exporter
        assert refused.release_reason_hash == "0x" + "55" * 32
        assert refused.disputed_by == season.financier
        assert lapsed.release_state == ReleaseState.LAPSED and lapsed.release_waived is None
        refunds = {
            (p.order_id, p.kind, p.payee)
            for p in s.exec(select(Payout).where(col(Payout.kind).endswith("refund"))).scalars()
        }
        assert (1, "exporter_refund", season.exporter) in refunds
        assert (5, "funder_refund", season.financier) in refunds
        a = orders[1]
        assert a.payment == 160 * USD and a.accepted_grams == 80_000
        assert a.paid_to_farmers == a.farmer_pool == 94 * USD
        farmer_paid = sum(
            p.amount
            for p in s.exec(select(Payout).where(Payout.order_id == 1)).scalars()
            if p.kind == "farmer"
        )
        assert farmer_paid == 94 * USD
        lots = {lot.lot_id: lot for lot in s.exec(select(Lot)).scalars()}
        assert lots[1].status == LotStatus.SPLIT
        assert lots[13].parent_lot_id == 1 and lots[13].crop == lots[1].crop
        assert lots[6].status == LotStatus.REJECTED
        assert lots[3].inspection == 2
        cons = {c.consignment_id: c for c in s.exec(select(Consignment)).scalars()}
        assert cons[1].status == ConsignmentStatus.CLOSED
        assert cons[1].lot_count == 11
        assert cons[1].custodian == season.exporter
        assert cons[2].status == ConsignmentStatus.CANCELLED
        advances = {x.advance_id: x.status for x in s.exec(select(Advance)).scalars()}
        assert advances == {
            1: AdvanceStatus.REPAID,
            2: AdvanceStatus.DEFAULTED,
            3: AdvanceStatus.REQUEST_CANCELLED,
        }
        jobs = {j.job_id: j.status for j in s.exec(select(TransportJob)).scalars()}
        assert jobs == {1: 4, 2: 6, 3: 5}

    assert verify(runtime).mismatches == []

    rebuilt = Mirror.from_runtime(runtime, parallel=False).rebuild()
    assert rebuilt.events == count(runtime.engine, ChainEvent)
    assert dump(runtime.engine) == followed


def test_reorg_rolls_back_to_the_fork_and_equals_a_rebuild(runtime: Runtime) -> None:
    season = Season(runtime)
    season.setup()
    f = season.farmers
    season.record([(f[0], 1_000), (f[1], 2_000)])
    # Small chunks through the decode worker: chunks fetched ahead of the fork must be
    # dropped, not applied.
    mirror = Mirror.from_runtime(runtime, chunk_blocks=2, adaptive=False, parallel=True)
    mirror.sync()
    w3 = runtime.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    tr = season.c.traceability.functions
    # The branch that will vanish: two more lots, a consignment, a farmer deactivated.
    doomed = season.record([(f[2], 7_777), (f[3], 8_888)])
    season.send(tr.createConsignment(99, 1), season.coop)
    season.send(season.c.registry.functions.setFarmerActive(f[2], False), season.coop)
    assert mirror.sync().events > 0
    with Session(runtime.engine) as s:
        assert s.get(Lot, doomed[0]) is not None
    old_head = w3.eth.block_number

    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    season.lot_ids -= 2
    # The new branch: other lots under the same ids, and more blocks than before.
    season.record([(f[3], 5_555)])
    season.record([(f[1], 6_666), (f[0], 4_444)])
    for _ in range(4):
        season.send(season.c.registry.functions.setFarmerActive(f[3], False), season.coop)
        season.send(season.c.registry.functions.setFarmerActive(f[3], True), season.coop)
    assert w3.eth.block_number > old_head

    result = mirror.sync()
    assert result.reorgs == 1
    followed = dump(runtime.engine)
    with Session(runtime.engine) as s:
        lots = {lot.lot_id: lot.grams for lot in s.exec(select(Lot)).scalars()}
        assert lots == {1: 1_000, 2: 2_000, 3: 5_555, 4: 6_666, 5: 4_444}
        assert s.exec(select(Consignment)).first() is None
        events = s.exec(select(ChainEvent.block_hash)).scalars().all()
        canonical = {
            w3.eth.get_block(n)["hash"].to_0x_hex() for n in range(w3.eth.block_number + 1)
        }
        assert set(events) <= canonical
    assert verify(runtime).mismatches == []
    mirror.close()
    Mirror.from_runtime(runtime, parallel=False).rebuild()
    assert dump(runtime.engine) == followed


def test_reorg_to_a_shorter_chain_is_followed(runtime: Runtime) -> None:
    season = Season(runtime)
    season.setup()
    mirror = Mirror.from_runtime(runtime)
    mirror.sync()
    w3 = runtime.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    season.record([(season.farmers[0], 1_000)] * 3)
    season.record([(season.farmers[1], 1_000)])
    mirror.sync()
    w3.provider.make_request("evm_revert", [snapshot])
    season.lot_ids = 0
    season.record([(season.farmers[2], 3_000)])  # head now below the cursor
    result = mirror.sync()
    assert result.reorgs == 1
    with Session(runtime.engine) as s:
        assert {lot.lot_id: lot.farmer for lot in s.exec(select(Lot)).scalars()} == {
            1: season.farmers[2]
        }
    followed = dump(runtime.engine)
    Mirror.from_runtime(runtime).rebuild()
    assert dump(runtime.engine) == followed


def test_reapplying_an_applied_chunk_adds_no_rows(runtime: Runtime) -> None:
    season = Season(runtime)
    season.setup()
    season.record([(season.farmers[0], 1_000)] * 5)
    mirror = Mirror.from_runtime(runtime)
    result = mirror.sync()
    assert result.events > 0
    before = dump(runtime.engine)
    n_events = count(runtime.engine, ChainEvent)
    book = runtime.address_book()
    assert book is not None
    assert mirror.apply_range(book.deploy_block, result.last_block) == 0
    assert mirror.sync().events == 0
    assert count(runtime.engine, ChainEvent) == n_events
    assert dump(runtime.engine) == before
    # and the raw table itself refuses a second copy of a log
    with runtime.engine.connect() as conn:
        row = dict(conn.execute(select(ChainEvent.__table__)).mappings().first())  # type: ignore[attr-defined]
        row.pop("id")
        with pytest.raises(IntegrityError):
            conn.execute(insert(ChainEvent.__table__), row)  # type: ignore[attr-defined]


def test_verify_reports_an_injected_discrepancy(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    season = Season(runtime)
    season.setup()
    season.order(10_000)
    season.record([(season.farmers[0], 1_000)] * 3)
    season.agent_order(1_000, financier_funds=True)  # order 2: funder and release agent
    for key, value in {
        "DATA_DIR": str(runtime.settings.data_dir),
        "RPC_URL": runtime.settings.effective_rpc_url,
        "DATABASE_URL": runtime.settings.effective_database_url,
    }.items():
        monkeypatch.setenv(f"KONBIT_{key}", value)
    monkeypatch.chdir(runtime.settings.data_dir)
    assert konbit_main(["mirror", "--once"]) == 0
    assert konbit_main(["verify"]) == 0
    assert "OK" in capsys.readouterr().out

    with runtime.engine.begin() as conn:
        conn.execute(update(Lot.__table__).where(Lot.__table__.c.lot_id == 2).values(grams=999))  # type: ignore[attr-defined]
        conn.execute(
            update(SaleOrder.__table__).values(status=OrderStatus.SETTLED)  # type: ignore[attr-defined]
        )
        conn.execute(
            update(SaleOrder.__table__)  # type: ignore[attr-defined]
            .where(SaleOrder.__table__.c.order_id == 2)  # type: ignore[attr-defined]
            .values(funder=season.exporter, release_state=ReleaseState.RELEASED)
        )
    report = verify(runtime)
    fields = {(m.entity, m.key, m.field) for m in report.mismatches}
    assert ("lot", 2, "grams") in fields
    assert ("order", 1, "status") in fields
    assert ("order", 1, "escrow held") in fields
    assert ("order", 2, "funder") in fields and ("order", 2, "release_state") in fields
    assert konbit_main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH lot 2: grams is 999 in SQL, 1000 on chain" in out

    # rebuild repairs it; private profiles survive the rebuild untouched
    with Session(runtime.engine) as s:
        s.add(FarmerProfile(address=season.farmers[0], name="Rose", phone="+50937000000"))
        s.commit()
    assert konbit_main(["mirror", "--rebuild", "--once"]) == 0
    assert konbit_main(["verify"]) == 0
    with Session(runtime.engine) as s:
        assert s.get(FarmerProfile, season.farmers[0]) is not None


def test_chain_reset_stops_the_mirror(tmp_path: Path, database_url: str) -> None:
    chain = LocalChain(tmp_path / "chain", port=free_port())
    chain.start()
    try:
        rt = make_runtime(chain.url, database_url, tmp_path / "data")
        deploy(rt, progress=lambda _: None)
        Mirror.from_runtime(rt).sync()
        chain.stop()
        chain.state_file.unlink()
        chain.start()
        with pytest.raises(MirrorResetError, match="konbit mirror --rebuild"):
            Mirror.from_runtime(rt).sync()
        rt.close()
    finally:
        chain.stop()


def test_confirmations_default_by_chain() -> None:
    settings = Settings.load(env_file=None, environ={})
    assert settings.effective_confirmations(31337) == 0
    assert settings.effective_confirmations(1337) == 0
    assert settings.effective_confirmations(1) == 12
    deep = Settings.load(env_file=None, environ={"KONBIT_CONFIRMATIONS": "3"})
    assert deep.effective_confirmations(31337) == 3


def test_konbit_run_app_mirrors_in_the_background(runtime: Runtime) -> None:
    import time

    from fastapi.testclient import TestClient

    from konbit.server import create_app

    season = Season(runtime)
    season.setup()
    season.record([(season.farmers[0], 1_000)] * 4)
    settings = runtime.settings.model_copy(update={"mirror_poll_seconds": 0.05})
    with TestClient(create_app(settings)):
        deadline = time.monotonic() + 30
        while count(runtime.engine, Lot) < 4:
            assert time.monotonic() < deadline, "the app's mirror did not catch up"
            time.sleep(0.05)
        season.record([(season.farmers[1], 2_000)])
        while count(runtime.engine, Lot) < 5:
            assert time.monotonic() < deadline, "the app's mirror did not follow"
            time.sleep(0.05)


def test_a_catch_up_moves_decoding_to_a_worker_that_restarts_when_killed(
    runtime: Runtime,
) -> None:
    season = Season(runtime)
    season.setup()
    for i in range(4):
        season.record([(season.farmers[i], 1_000 + i)] * 3)
    with Mirror.from_runtime(runtime, chunk_blocks=2, adaptive=False, parallel_min_logs=3) as m:
        first = m.sync(max_chunks=2)
        worker = m._worker
        assert worker is not None and worker.alive, "a chunk of >= 3 logs starts the worker"
        worker._process.kill()
        worker._process.wait()
        rest = m.sync()  # a dead worker is replaced, nothing is lost
        assert m._worker is not worker and m._worker is not None and m._worker.alive
    assert m._worker is None  # closed with the mirror
    followed = dump(runtime.engine)
    assert first.events + rest.events == count(runtime.engine, ChainEvent)
    Mirror.from_runtime(runtime, parallel=False).rebuild()
    assert dump(runtime.engine) == followed
    assert verify(runtime).mismatches == []


def test_a_worker_that_cannot_reach_the_node_fails_the_sync_cleanly(runtime: Runtime) -> None:
    season = Season(runtime)
    season.setup()
    mirror = Mirror.from_runtime(runtime, parallel=True)
    before = mirror.sync().last_block
    mirror.close()
    season.record([(season.farmers[0], 1_000)])
    # A worker whose node is unreachable (the mirror's own client still reaches it).
    worker = DecodeWorker(f"http://127.0.0.1:{free_port()}", mirror._addresses, mirror._names)
    mirror._worker = worker
    try:
        with pytest.raises(MirrorError, match="ConnectionError"):
            mirror.sync()
        assert mirror._last_block() == before  # nothing half-applied
    finally:
        worker.close()
        mirror._worker = None
    assert mirror.sync().events == 1
    mirror.close()

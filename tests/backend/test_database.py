"""Database smoke test, on SQLite and on PostgreSQL: migrate, write, read, constraints."""

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from konbit.db.engine import database_kind
from konbit.db.migrate import upgrade
from konbit.db.models import Deployment


def test_migrate_write_read(engine: Engine, database_url: str) -> None:
    assert database_kind(database_url) in ("sqlite", "postgresql")
    upgrade(engine)
    assert {"deployment", "alembic_version"} <= set(inspect(engine).get_table_names())
    upgrade(engine)  # idempotent
    with Session(engine) as s:
        s.add(
            Deployment(
                chain_id=31337,
                contract="ClusterRegistry",
                address="0x" + "ab" * 20,
                code_hash="0x" + "cd" * 32,
                block_number=2**40,
            )
        )
        s.commit()
    with Session(engine) as s:
        row = s.exec(select(Deployment).where(Deployment.chain_id == 31337)).one()
        assert row.contract == "ClusterRegistry"
        assert row.block_number == 2**40


def test_unique_address_book_entry(engine: Engine) -> None:
    upgrade(engine)
    with Session(engine) as s:
        s.add(Deployment(chain_id=1, contract="X", address="0x" + "00" * 20, code_hash="0x"))
        s.commit()
        s.add(Deployment(chain_id=1, contract="X", address="0x" + "11" * 20, code_hash="0x"))
        with pytest.raises(IntegrityError):
            s.commit()

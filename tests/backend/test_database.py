"""Database smoke test, on SQLite and on PostgreSQL: migrate, write, read, constraints."""

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import column, insert, inspect, table
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


def test_farmer_phones_stored_as_typed_become_e164(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Migration 0013: the phones the dashboard stored as typed, before it normalised
    them, become E.164; a phone that is no number, or that would become another farmer's,
    stays as it was and is named in a warning by the farmer's address only."""
    upgrade(engine, "0012")
    typed = {
        "0x" + "01" * 20: "3712 3456",  # local, as a person types it
        "0x" + "02" * 20: "+509 3700-1234",
        "0x" + "03" * 20: "+50937009999",  # already E.164
        "0x" + "04" * 20: "12",  # no phone number
        "0x" + "05" * 20: "3700 9999",  # farmer 03's number, written locally
        "0x" + "06" * 20: None,
    }
    now = datetime.now(UTC)
    farmers = table(
        "farmer_profile",
        column("address"),
        column("name"),
        column("phone"),
        column("language"),
        column("created_at"),
        column("updated_at"),
    )
    with engine.begin() as conn:
        conn.execute(
            insert(farmers),
            [
                {
                    "address": a,
                    "name": "F",
                    "phone": p,
                    "language": "ht",
                    "created_at": now,
                    "updated_at": now,
                }
                for a, p in typed.items()
            ],
        )
    with caplog.at_level(logging.WARNING, logger="konbit.db.migrations"):
        upgrade(engine)
    with engine.connect() as conn:
        phones = dict(conn.execute(select(farmers.c.address, farmers.c.phone)).all())
    assert phones == {
        "0x" + "01" * 20: "+50937123456",
        "0x" + "02" * 20: "+50937001234",
        "0x" + "03" * 20: "+50937009999",
        "0x" + "04" * 20: "12",
        "0x" + "05" * 20: "3700 9999",
        "0x" + "06" * 20: None,
    }
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "0x" + "04" * 20 in warned and "0x" + "05" * 20 in warned
    assert "3700" not in warned and "12 " not in warned  # never the number itself

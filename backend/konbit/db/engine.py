"""Engines and sessions for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from konbit.db.sqlite_writer import WriterLock, WriterLockedConnection


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def database_kind(url: str) -> str:
    """``sqlite`` or ``postgresql`` (the backend name of the URL)."""
    return make_url(url).get_backend_name()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; creates the SQLite file's folder, turns on WAL and foreign keys."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": 30}
        if parsed.database and parsed.database != ":memory:":
            private_sqlite_file(Path(parsed.database))
            connect_args["factory"] = WriterLockedConnection
            writer_lock = WriterLock.for_database(parsed.database)
        # As many pooled connections as the server has threads (anyio's 40): a connection
        # opened and closed per request re-runs the PRAGMAs each time.
        options = {"pool_size": 40, "max_overflow": 20, **kwargs}
        engine = create_engine(url, connect_args=connect_args, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        if "factory" in connect_args:

            def hand_lock(dbapi_connection: Any, _record: Any) -> None:
                dbapi_connection.writer_lock = writer_lock

            event.listen(engine, "connect", hand_lock)
        return engine
    # No pre-ping: it costs a round trip per checkout on the hot paths; recycling
    # connections hourly covers servers that drop idle ones.
    options = {"pool_recycle": 3600, "pool_size": 10, "max_overflow": 20, **kwargs}
    return create_engine(url, **options)


def private_sqlite_file(path: Path) -> None:
    """The database holds names, phones and plots: a 0600 file in a 0700 folder.

    SQLite creates the ``-wal`` and ``-shm`` files with the database file's mode, so they
    follow. A folder Konbit creates is made 0700; an existing one is narrowed to 0700 only
    when it is the folder of Konbit's own data (it holds nothing else).
    """
    folder = path.parent
    if not folder.exists():
        folder.mkdir(parents=True, mode=0o700)
        folder.chmod(0o700)  # mkdir's mode is masked by the umask
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists() and side.stat().st_mode & 0o077:
            side.chmod(0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise

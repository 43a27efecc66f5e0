"""The SQLite writer lock (konbit.db.sqlite_writer): held exactly while a transaction writes,
shared by the threads of a process and by processes, and nothing lost under contention."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from konbit.db.engine import make_engine


def _lock_is_free(database: Path) -> bool:
    """Whether another open file could take the lock now (what another process would see)."""
    fd = os.open(str(database) + ".writer-lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "konbit.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO t (k, n) VALUES (1, 0)"))
    engine.dispose()
    return path


def test_held_from_the_first_write_to_the_end_of_the_transaction(database: Path) -> None:
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        connection.execute(text("SELECT n FROM t")).all()
        assert _lock_is_free(database), "a read takes no writer lock"
        connection.execute(text("UPDATE t SET n = n + 1 WHERE k = 1"))
        assert not _lock_is_free(database)
        connection.execute(text("INSERT INTO t (k, n) VALUES (2, 0)"))
        assert not _lock_is_free(database)
        connection.commit()
        assert _lock_is_free(database)

        connection.execute(text("  insert into t (k, n) values (3, 0)"))
        assert not _lock_is_free(database)
        connection.rollback()
        assert _lock_is_free(database)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    engine.dispose()


def test_a_refused_write_lets_go_when_rolled_back(database: Path) -> None:
    engine = make_engine(f"sqlite:///{database}")
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("INSERT INTO t (k, n) VALUES (1, 0)"))  # k=1 exists
    assert _lock_is_free(database)
    with engine.begin() as connection:  # and the next writer is not kept waiting
        connection.execute(text("UPDATE t SET n = 5 WHERE k = 1"))
    assert _lock_is_free(database)
    engine.dispose()


def test_a_returned_connection_lets_go(database: Path) -> None:
    """The pool rolls back what a caller left open: the lock goes with it."""
    engine = make_engine(f"sqlite:///{database}")
    connection = engine.connect()
    connection.execute(text("UPDATE t SET n = 7 WHERE k = 1"))
    assert not _lock_is_free(database)
    connection.close()
    assert _lock_is_free(database)
    engine.dispose()


def test_processes_and_threads_writing_at_once_lose_nothing(database: Path) -> None:
    context = multiprocessing.get_context("spawn")
    processes, threads, times = 3, 4, 50
    children = [
        context.Process(target=_add_rows, args=(str(database), p, threads, times))
        for p in range(processes)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
        assert child.exitcode == 0
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM t WHERE k > 1")).scalar_one()
        total = connection.execute(text("SELECT n FROM t WHERE k = 1")).scalar_one()
    engine.dispose()
    assert rows == processes * threads * times
    assert total == processes * threads * times
    assert _lock_is_free(database)


def _add_rows(path: str, process: int, threads: int, times: int) -> None:
    engine = make_engine(f"sqlite:///{path}")
    # No busy waiting at all: two Konbit writers meeting on SQLite's own lock would fail
    # at once with "database is locked". The writer lock must keep them from meeting.
    event.listen(engine, "connect", lambda c, _: c.execute("PRAGMA busy_timeout = 0"))
    failures: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(times):
                with engine.begin() as connection:
                    key = 2 + ((process * threads + thread) * times + i)
                    connection.execute(text("INSERT INTO t (k, n) VALUES (:k, 0)"), {"k": key})
                    connection.execute(text("UPDATE t SET n = n + 1 WHERE k = 1"))
        except BaseException as exc:  # reported through the exit code
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    engine.dispose()
    if failures:
        raise SystemExit(f"{len(failures)} failed: {failures[0]!r}")

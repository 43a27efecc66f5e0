"""One writer at a time on a SQLite file, handed over at once rather than by polling.

SQLite lets one connection write at a time. One that finds the file locked waits in its
busy handler, which *sleeps* 1, 2, 5, 10, 15, 20, 25 ... ms between tries, however soon
the lock is freed. With the web workers, the outbox worker, the mirror and the SMS sender
all writing short transactions, those sleeps (not the writes) made most of the tail
latency of a write: an SMS reply at p99 waited tens of milliseconds for a lock that had
been free for most of them.

So every Konbit connection takes a lock of its own before its first write statement and
gives it up when its transaction ends: a :class:`threading.Lock` among the threads of a
process, then ``flock`` on a file beside the database among processes. Both block in the
kernel, and a waiter wakes when the lock is released. SQLite's own lock is then never
contended by Konbit's writers; its busy handler still covers anybody else (the ``sqlite3``
shell, a migration's DDL).

A transaction starts with its first ``INSERT``, ``UPDATE``, ``DELETE`` or ``REPLACE``
(the ``sqlite3`` module's implicit ``BEGIN``; reads before it run outside a transaction),
which is exactly when the lock is taken, so a writer never holds a stale read snapshot.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, ClassVar

#: The statements that make the ``sqlite3`` module open a transaction (its legacy mode).
_WRITES = ("insert", "update", "delete", "replace")
#: As long as SQLite's own busy timeout: past it a write fails as "database is locked".
TIMEOUT_SECONDS = 30.0


class WriterLock:
    """The process's and the file's writer lock for one SQLite database."""

    _by_path: ClassVar[dict[str, WriterLock]] = {}
    _by_path_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, lock_path: str) -> None:
        self.lock_path = lock_path
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = os.getpid()

    @classmethod
    def for_database(cls, database: str) -> WriterLock:
        """One lock per database file per process, whichever engine opened it."""
        path = str(Path(database).resolve())
        with cls._by_path_guard:
            lock = cls._by_path.get(path)
            if lock is None:
                lock = cls._by_path[path] = cls(path + ".writer-lock")
            return lock

    def acquire(self) -> None:
        if not self._threads.acquire(timeout=TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked")
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int:
        # A forked child must not share the parent's open file (flock is per open file).
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR, 0o600)
            self._pid = os.getpid()
        return self._fd


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        self.connection._before(sql)  # type: ignore[attr-defined]
        super().execute(sql, parameters)
        return self

    def executemany(self, sql: str, parameters: Any, /) -> _Cursor:
        self.connection._before(sql)  # type: ignore[attr-defined]
        super().executemany(sql, parameters)
        return self


class WriterLockedConnection(sqlite3.Connection):
    """A ``sqlite3`` connection that holds its database's :class:`WriterLock` while it
    writes. Passed to ``sqlite3.connect`` as ``factory``; the lock is set by
    :func:`connect_args`'s caller through :attr:`writer_lock` after connecting."""

    writer_lock: WriterLock | None = None
    _holding = False

    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)

    def _before(self, sql: str) -> None:
        lock = self.writer_lock
        if lock is None or self._holding or self.in_transaction:
            return
        if sql.lstrip()[:7].lower().startswith(_WRITES):
            lock.acquire()
            self._holding = True

    def _let_go(self) -> None:
        if self._holding:
            self._holding = False
            assert self.writer_lock is not None
            self.writer_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._let_go()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._let_go()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._let_go()

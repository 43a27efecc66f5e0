"""Per-chunk write buffer: handlers change rows in memory, flushed with bulk statements.

Handlers never issue one statement per event. Keyed rows (lots, orders, ...) go through
``new`` / ``update`` / ``delete`` / ``get``; the buffer merges every change to one row
within the chunk and flushes each table with at most one executemany per kind of change
(deletes, inserts, and updates grouped by the set of columns they touch). ``get`` reads a
row from the database only when the chunk has not seen it yet. Append-only history
tables take plain rows. There are no foreign keys between projection tables, so the
order of tables does not matter; within a table, deletes go before inserts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, Table, and_, select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from konbit.mirror.types import Uint

Key = Any
Row = dict[str, Any]

_INSERT, _UPDATE, _DELETE, _REPLACE = range(4)


class _Entry:
    __slots__ = ("loaded", "mode", "values")

    def __init__(self, mode: int, values: Row, loaded: bool) -> None:
        self.mode = mode
        self.values = values
        self.loaded = loaded


def _defaults(table: Table) -> Row:
    out: Row = {}
    for column in table.columns:
        default: Any = column.default
        scalar = default is not None and getattr(default, "is_scalar", False)
        out[column.name] = default.arg if scalar else None
    return out


def _uint_as_text(row: Sequence[Any], positions: Sequence[int]) -> tuple[Any, ...]:
    """SQLite stores ``Uint`` columns as decimal text (its integers stop at 2^63)."""
    out = list(row)
    for i in positions:
        if out[i] is not None:
            out[i] = str(out[i])
    return tuple(out)


def _sql_type(column: Any) -> str:
    kind = column.type
    if isinstance(kind, Uint):
        return "numeric"
    if isinstance(kind, BigInteger):
        return "bigint"
    if isinstance(kind, Integer):
        return "integer"
    if isinstance(kind, Boolean):
        return "boolean"
    return "text"


class BulkWriter:
    """Set-based statements for one table, without per-row work in SQLAlchemy.

    PostgreSQL: inserts through ``COPY``, updates and deletes as one statement per batch
    over ``unnest`` of one array per column (UPDATE ... FROM, DELETE ... USING). Other
    databases (SQLite) get a DB-API ``executemany`` of plain tuples, ``Uint`` values as
    decimal strings. Integers stay exact either way.
    Identifiers come from the table metadata and values only from parameters (S608).
    """

    def __init__(self, table: Table) -> None:
        self.table = table
        self.name = f'"{table.name}"'
        self.types = {c.name: _sql_type(c) for c in table.columns}
        self.uint = {c.name for c in table.columns if isinstance(c.type, Uint)}

    def _columns(self, cols: Sequence[str], rows: Sequence[Row]) -> tuple[list[Any], ...]:
        """Column-major lists of native values, for unnest on PostgreSQL."""
        return tuple([r[c] for r in rows] for c in cols)

    def _uint_positions(self, cols: Sequence[str]) -> list[int]:
        return [i for i, c in enumerate(cols) if c in self.uint]

    def _tuples(self, cols: Sequence[str], rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        """Dict rows as SQLite parameter tuples in ``cols`` order."""
        at = self._uint_positions(cols)
        return [_uint_as_text([r[c] for c in cols], at) for r in rows]

    def _unnest(self, cols: Sequence[str]) -> str:
        args = ", ".join(f"%s::{self.types[c]}[]" for c in cols)
        names = ", ".join(f'"{c}"' for c in cols)
        return f"unnest({args}) AS u({names})"

    def insert(self, conn: Connection, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows given as value sequences in ``cols`` order."""
        names = ", ".join(f'"{c}"' for c in cols)
        if conn.dialect.name == "postgresql":
            raw: Any = conn.connection.driver_connection
            statement = f"COPY {self.name} ({names}) FROM STDIN"
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
        else:
            at = self._uint_positions(cols)
            rows = [_uint_as_text(row, at) for row in rows] if at else rows
            marks = ", ".join("?" for _ in cols)
            sql = f"INSERT INTO {self.name} ({names}) VALUES ({marks})"  # noqa: S608
            conn.exec_driver_sql(sql, rows)

    def insert_dicts(
        self, conn: Connection, cols: Sequence[str], defaults: Row, rows: Sequence[Row]
    ) -> None:
        """Insert rows given as dicts; a column a row leaves out takes ``defaults``' value."""
        pick = itemgetter(*cols)
        if len(cols) == 1:
            self.insert(conn, cols, [(pick({**defaults, **r}),) for r in rows])
        else:
            self.insert(conn, cols, [pick({**defaults, **r}) for r in rows])

    def update(
        self, conn: Connection, keys: Sequence[str], cols: Sequence[str], rows: Sequence[Row]
    ) -> None:
        t = self.name
        if conn.dialect.name == "postgresql":
            sets = ", ".join(f'"{c}" = u."{c}"' for c in cols)
            where = " AND ".join(f'{t}."{k}" = u."{k}"' for k in keys)
            both = [*keys, *cols]
            sql = f"UPDATE {t} SET {sets} FROM {self._unnest(both)} WHERE {where}"  # noqa: S608
            conn.exec_driver_sql(sql, self._columns(both, rows))
        else:
            sets = ", ".join(f'"{c}" = ?' for c in cols)
            where = " AND ".join(f'"{k}" = ?' for k in keys)
            sql = f"UPDATE {t} SET {sets} WHERE {where}"  # noqa: S608
            conn.exec_driver_sql(sql, self._tuples([*cols, *keys], rows))

    def delete(self, conn: Connection, keys: Sequence[str], rows: Sequence[Row]) -> None:
        t = self.name
        if conn.dialect.name == "postgresql":
            where = " AND ".join(f'{t}."{k}" = u."{k}"' for k in keys)
            sql = f"DELETE FROM {t} USING {self._unnest(keys)} WHERE {where}"  # noqa: S608
            conn.exec_driver_sql(sql, self._columns(keys, rows))
        else:
            where = " AND ".join(f'"{k}" = ?' for k in keys)
            sql = f"DELETE FROM {t} WHERE {where}"  # noqa: S608
            conn.exec_driver_sql(sql, self._tuples(keys, rows))


class KeyedTable:
    """Pending changes to one table whose rows are addressed by their primary key."""

    def __init__(self, model: type[SQLModel], conn_ref: WriteBuffer) -> None:
        self.table: Table = model.__table__  # type: ignore[attr-defined]
        self.keys = tuple(c.name for c in self.table.primary_key.columns)
        self.defaults = _defaults(self.table)
        self.columns = tuple(self.defaults)
        self.writer = BulkWriter(self.table)
        self._buffer = conn_ref
        self._entries: dict[Key, _Entry] = {}

    def _key_values(self, key: Key) -> Row:
        if len(self.keys) == 1:
            return {self.keys[0]: key}
        return dict(zip(self.keys, key, strict=True))

    def new(self, key: Key, row: Row) -> None:
        """A row that does not exist yet (or replaces one deleted in this chunk)."""
        entry = self._entries.get(key)
        if entry is None or entry.mode == _INSERT:
            self._entries[key] = _Entry(_INSERT, row, True)
        else:
            self._entries[key] = _Entry(_REPLACE, row, True)

    def update(self, key: Key, **values: Any) -> None:
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(_UPDATE, values, False)
        elif entry.mode != _DELETE:
            entry.values.update(values)

    def delete(self, key: Key) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.mode == _INSERT:
            del self._entries[key]
        else:
            self._entries[key] = _Entry(_DELETE, {}, True)

    def get(self, key: Key) -> Row | None:
        """The row as it stands in this chunk (read-only: change it with ``update``)."""
        entry = self._entries.get(key)
        if entry is not None:
            if entry.mode == _DELETE:
                return None
            if entry.loaded:
                return entry.values
        stored = self._load(key)
        if stored is None:
            return None if entry is None else entry.values
        if entry is None:
            entry = _Entry(_UPDATE, stored, True)
            self._entries[key] = entry
        else:
            stored.update(entry.values)
            entry.values = stored
            entry.loaded = True
        return entry.values

    def upsert(self, key: Key, row: Row) -> None:
        if self.get(key) is None:
            self.new(key, row)
        else:
            self.update(key, **row)

    def _load(self, key: Key) -> Row | None:
        t = self.table
        where = and_(*(t.c[k] == v for k, v in self._key_values(key).items()))
        found = self._buffer.connection.execute(select(t).where(where)).mappings().first()
        return dict(found) if found is not None else None

    def flush(self, conn: Connection) -> int:
        if not self._entries:
            return 0
        deletes: list[Row] = []
        inserts: list[Row] = []
        updates: dict[tuple[str, ...], list[Row]] = {}
        keys = self.keys
        for key, entry in self._entries.items():
            if entry.mode in (_DELETE, _REPLACE):
                deletes.append(self._key_values(key))
            if entry.mode in (_INSERT, _REPLACE):
                inserts.append(entry.values)
            elif entry.mode == _UPDATE:
                cols = tuple(sorted(c for c in entry.values if c not in keys))
                if cols:
                    updates.setdefault(cols, []).append({**entry.values, **self._key_values(key)})
        writer = self.writer
        if deletes:
            writer.delete(conn, keys, deletes)
        if inserts:
            writer.insert_dicts(conn, self.columns, self.defaults, inserts)
        for cols, rows in updates.items():
            writer.update(conn, keys, cols, rows)
        count = len(self._entries)
        self._entries.clear()
        return count


class AppendTable:
    """Rows only ever inserted (histories, payouts, movements)."""

    def __init__(self, model: type[SQLModel]) -> None:
        self.table: Table = model.__table__  # type: ignore[attr-defined]
        self.defaults = _defaults(self.table)
        self.columns = tuple(self.defaults)
        self.writer = BulkWriter(self.table)
        self.rows: list[Row] = []

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def flush(self, conn: Connection) -> int:
        if not self.rows:
            return 0
        self.writer.insert_dicts(conn, self.columns, self.defaults, self.rows)
        count = len(self.rows)
        self.rows.clear()
        return count


class WriteBuffer:
    """The keyed and append-only tables of one unit of work, bound to a connection."""

    def __init__(self) -> None:
        self._connection: Connection | None = None
        self._tables: list[KeyedTable | AppendTable] = []

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("the write buffer is not bound to a connection")
        return self._connection

    def bind(self, connection: Connection | None) -> None:
        self._connection = connection

    def keyed(self, model: type[SQLModel]) -> KeyedTable:
        table = KeyedTable(model, self)
        self._tables.append(table)
        return table

    def append(self, model: type[SQLModel]) -> AppendTable:
        table = AppendTable(model)
        self._tables.append(table)
        return table

    def flush(self) -> int:
        conn = self.connection
        return sum(t.flush(conn) for t in self._tables)

    def discard(self) -> None:
        for t in self._tables:
            if isinstance(t, KeyedTable):
                t._entries.clear()
            else:
                t.rows.clear()

    def tables(self) -> Iterable[Table]:
        return (t.table for t in self._tables)

"""A hot read compiled once per dialect and run on a pooled DBAPI connection.

Through a SQLAlchemy ``Connection`` or ``Session`` a small indexed read costs its cache
key, a compiled-cache lookup, an execution context and result wrapping: measured under
``bench/api_load.py``, the API-key lookup was a tenth of a web worker's CPU that way, and
the write's in-flight prefix (:func:`konbit.services.writes.simulate`) another tenth. For
the few reads every request makes, :class:`RawQuery` skips all of that.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

#: The SQL, the default values of its parameters, their order when the style is positional.
_Compiled = tuple[str, dict[str, Any], list[str] | None]


class RawQuery:
    """``statement`` with its bound parameters named: compiled for each dialect it meets,
    with IN-lists and literal values bound, and run as plain DBAPI."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str, str], _Compiled] = {}
        self._guard = threading.Lock()

    def _for(self, engine: Engine) -> _Compiled:
        dialect = engine.dialect
        key = (dialect.name, dialect.driver, str(dialect.paramstyle))
        found = self._compiled.get(key)
        if found is None:
            compiled = self.statement.compile(
                dialect=dialect, compile_kwargs={"render_postcompile": True}
            )
            assert isinstance(compiled, SQLCompiler)
            order = list(compiled.positiontup or []) if compiled.positional else None
            with self._guard:
                found = self._compiled.setdefault(
                    key, (str(compiled), dict(compiled.params), order)
                )
        return found

    def all(self, engine: Engine, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row, as the DBAPI gives them (tuples), with ``params`` over the defaults."""
        return self._run(engine, params, one=False)  # type: ignore[no-any-return]

    def first(self, engine: Engine, params: Mapping[str, Any] | None = None) -> Any | None:
        """The first row, or None."""
        return self._run(engine, params, one=True)

    def _run(self, engine: Engine, params: Mapping[str, Any] | None, *, one: bool) -> Any:
        sql, defaults, order = self._for(engine)
        values = {**defaults, **(params or {})}
        bound: Any = values if order is None else tuple(values[k] for k in order)
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, bound)
                return cursor.fetchone() if one else list(cursor.fetchall())
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool, which ends the read's transaction

"""Column types for on-chain integers.

Token amounts and grams are unsigned up to 256 bits on chain, wider than SQL's BIGINT.
``Uint`` keeps them exact everywhere: ``NUMERIC(78, 0)`` on PostgreSQL (sums and
comparisons work in SQL), a decimal string on SQLite (whose integers stop at 2^63 and
whose NUMERIC falls back to floating point). Python always sees ``int``. On SQLite, sum
in Python or with ``CAST(col AS INTEGER)`` for values known to be small.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class Uint(TypeDecorator[int]):
    """An unsigned integer of up to 256 bits, exact on PostgreSQL and SQLite."""

    impl = Numeric(78, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(78, 0, asdecimal=True))
        return dialect.type_descriptor(String(78))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = int(value)
        return Decimal(number) if dialect.name == "postgresql" else str(number)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


#: Timestamps and ids are uint64 on chain. Ids are counters (far below 2^63); times are
#: clamped to 2^63 - 1 (a date billions of years away) when a party records a wild value.
#: The exact value always stays in ``chain_event.args``.
INT64_MAX = 2**63 - 1

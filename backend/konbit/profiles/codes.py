"""Farmer codes: short numbers a farmer, an agent or a label scanner can type.

A farmer is an address on chain (42 characters): nobody types that on a feature phone.
Each farmer gets a code the first time one is asked for: a running number (1001 for the
first farmer, then 1002, ...) and a Damm check digit, so that a mistyped digit or two
swapped neighbours is caught before a lot is recorded for the wrong farmer. The code is
printed on the farmer's ID card (as text and as its QR code) and used in SMS and USSD.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from konbit.profiles.models import utcnow

#: The running number of the first code is ``OFFSET + 1``: codes have at least five digits.
OFFSET = 1000
MAX_CODE_LENGTH = 12

# The Damm algorithm's quasigroup of order 10 (weakly totally anti-symmetric).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm(digits: str) -> int:
    """The Damm check digit of a string of digits (0 when appended makes it valid)."""
    interim = 0
    for d in digits:
        interim = _DAMM[interim][int(d)]
    return interim


def code_of(row_id: int) -> str:
    body = str(OFFSET + row_id)
    return body + str(damm(body))


def id_of(code: str) -> int | None:
    """The row id of a well-formed code, or None (bad check digit, not digits)."""
    code = code.strip()
    if not (5 <= len(code) <= MAX_CODE_LENGTH) or not code.isascii() or not code.isdigit():
        return None
    if damm(code) != 0:
        return None
    row_id = int(code[:-1]) - OFFSET
    return row_id if row_id >= 1 else None


class FarmerCode(SQLModel, table=True):
    """The farmer's short code: ``code_of(id)``."""

    __tablename__ = "farmer_code"

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(max_length=42, unique=True)
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def code(self) -> str:
        assert self.id is not None
        return code_of(self.id)


def code_for(session: Session, address: str, *, commit: bool = True) -> str:
    """The farmer's code, given one the first time.

    ``commit``: the new code commits at once; else it is flushed in a savepoint and commits
    with the caller's transaction (a caller already writing, e.g. the SMS notifier).
    """
    row = session.exec(select(FarmerCode).where(FarmerCode.address == address)).first()
    if row is not None:
        return row.code
    row = FarmerCode(address=address)
    if commit:
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # another process gave this farmer a code first
            session.rollback()
            return code_for(session, address)
        return row.code
    nested = session.begin_nested()
    session.add(row)
    try:
        session.flush()
        nested.commit()
    except IntegrityError:
        nested.rollback()
        found = session.exec(select(FarmerCode).where(FarmerCode.address == address)).first()
        if found is None:
            raise
        return found.code
    return row.code


def address_for(session: Session, code: str) -> str | None:
    """The farmer's address for a code, or None (unknown or mistyped)."""
    row_id = id_of(code)
    if row_id is None:
        return None
    row = session.get(FarmerCode, row_id)
    return None if row is None else row.address

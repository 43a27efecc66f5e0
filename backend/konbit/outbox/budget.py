"""Per-organisation gas sponsorship budget: what the operator tops up in 24 hours.

The operator pays for custodial accounts' gas by topping them up (``sponsor.py``). A budget
per sender and rolling 24 hours caps that, so that a leaked key or a runaway client drains
its own day's budget, never the operator's coin. Spend is read from the outbox's own
top-up rows: nothing else to keep in step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from konbit.outbox.models import OutboxTx, TxStatus, utcnow

TOPUP_FUNCTION = "gas-topup"
WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Spend:
    account: str
    spent_wei: int
    budget_wei: int  # 0: no cap
    topups: int

    @property
    def remaining_wei(self) -> int | None:
        return None if self.budget_wei == 0 else max(0, self.budget_wei - self.spent_wei)


class GasBudget:
    #: ``allows`` may answer from a reading this many seconds old (it runs on every write).
    CACHE_SECONDS = 5.0

    def __init__(self, engine: Engine, per_day_wei: int) -> None:
        self.engine = engine
        self.per_day_wei = per_day_wei
        self._recent: dict[str, tuple[float, int]] = {}

    def spend(self, account: str) -> Spend:
        return self.spends([account]).get(account) or Spend(account, 0, self.per_day_wei, 0)

    def spends(self, accounts: list[str] | None = None) -> dict[str, Spend]:
        """Top-ups of the last 24 hours per receiving account (failed ones cost nothing)."""
        query = (
            select(OutboxTx.to_address, OutboxTx.value_wei)
            .where(OutboxTx.function == TOPUP_FUNCTION)
            .where(OutboxTx.status != TxStatus.FAILED.value)
            .where(col(OutboxTx.created_at) >= utcnow() - WINDOW)
        )
        if accounts is not None:
            query = query.where(col(OutboxTx.to_address).in_(accounts))
        totals: dict[str, list[int]] = {}
        with Session(self.engine) as session:
            for to, value in session.exec(query).all():
                if to is None:
                    continue
                entry = totals.setdefault(to, [0, 0])
                entry[0] += int(value)
                entry[1] += 1
        return {
            account: Spend(account, spent, self.per_day_wei, count)
            for account, (spent, count) in totals.items()
        }

    def allows(self, account: str, amount_wei: int, *, fresh: bool = True) -> bool:
        """May the operator send ``amount_wei`` more to ``account`` today?

        The sponsor asks ``fresh`` (it is what enforces the budget); a write's early check
        may take a reading a few seconds old.
        """
        if self.per_day_wei == 0:
            return True
        now = time.monotonic()
        cached = self._recent.get(account)
        # A reading is reused only while two more top-ups would still fit: one top-up at a
        # time goes to an account, each lasting many transactions, so a few seconds' old
        # reading with that headroom cannot let a write past a spent budget.
        if (
            fresh
            or cached is None
            or now - cached[0] > self.CACHE_SECONDS
            or cached[1] + 2 * amount_wei > self.per_day_wei
        ):
            cached = (now, self.spend(account).spent_wei)
            self._recent[account] = cached
        return cached[1] + amount_wei <= self.per_day_wei

    def frees_in(self, account: str) -> int:
        """Seconds until the oldest top-up of the window leaves it (at least 1)."""
        with Session(self.engine) as session:
            oldest = session.exec(
                select(OutboxTx.created_at)
                .where(OutboxTx.function == TOPUP_FUNCTION)
                .where(OutboxTx.to_address == account)
                .where(col(OutboxTx.created_at) >= utcnow() - WINDOW)
                .order_by(col(OutboxTx.created_at))
            ).first()
        if oldest is None:
            return 1
        if oldest.tzinfo is None:  # SQLite hands back naive UTC
            oldest = oldest.replace(tzinfo=UTC)
        return max(1, int((oldest + WINDOW - utcnow()).total_seconds()) + 1)

"""Gas sponsorship by top-up: the operator keeps custodial accounts' native balance up.

Why top-ups rather than ERC-2771 meta-transactions: the contracts keep plain
``msg.sender`` semantics (no trusted forwarder to audit, nothing to change in them), every
custodial transaction is an ordinary one that any EVM node mines and any explorer shows,
and farmers, who rarely send transactions at all (cooperatives record lots for them and
payouts are pushed to them), cost nothing. The price is one top-up transaction per
``topup_wei`` of gas spent, sent through the outbox like every other write.
"""

from __future__ import annotations

import logging
import uuid

from eth_utils import to_checksum_address
from sqlalchemy import or_, true
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from konbit.chain.rpc import RpcClient
from konbit.outbox.budget import TOPUP_FUNCTION, GasBudget
from konbit.outbox.models import PENDING, OutboxTx
from konbit.outbox.service import submit

log = logging.getLogger(__name__)


class TopUpSponsor:
    """Sends ``topup_wei`` from the operator to a sender whose balance runs low."""

    def __init__(
        self,
        engine: Engine,
        rpc: RpcClient,
        operator: str,
        *,
        topup_wei: int,
        budget: GasBudget | None = None,
        chain_genesis: str | None = None,
    ) -> None:
        self.engine = engine
        #: The chain the top-ups are for (konbit.services.chains); None: any.
        self.chain_genesis = chain_genesis
        self.rpc = rpc
        self.operator = to_checksum_address(operator)
        self.topup_wei = topup_wei
        self.budget = budget
        self._warned: set[str] = set()

    def ensure_funded(self, sender: str, needed_wei: int) -> bool:
        if sender == self.operator:
            return True
        if int(self.rpc.call("eth_getBalance", sender, "pending"), 16) >= needed_wei:
            return True
        with Session(self.engine) as session:
            on_its_way = session.exec(
                select(OutboxTx.id)
                .where(OutboxTx.sender == self.operator)
                .where(OutboxTx.to_address == sender)
                .where(OutboxTx.function == TOPUP_FUNCTION)
                .where(col(OutboxTx.status).in_(PENDING))
                .where(
                    or_(
                        col(OutboxTx.chain_genesis).is_(None),
                        col(OutboxTx.chain_genesis) == self.chain_genesis,
                    )
                    if self.chain_genesis is not None
                    else true()
                )
            ).first()
            amount = max(self.topup_wei, needed_wei)
            if on_its_way is None and self.budget and not self.budget.allows(sender, amount):
                if sender not in self._warned:  # once per process, not once per poll
                    self._warned.add(sender)
                    log.warning("gas budget of %s spent for today: no top-up", sender)
                return False
            if on_its_way is None:
                submit(
                    session,
                    key=f"{TOPUP_FUNCTION}:{sender}:{uuid.uuid4().hex}",
                    sender=self.operator,
                    to=sender,
                    value=amount,
                    function=TOPUP_FUNCTION,
                    chain_genesis=self.chain_genesis,
                )
        return False

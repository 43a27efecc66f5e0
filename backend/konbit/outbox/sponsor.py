"""Gas sponsorship by top-up: the operator keeps custodial accounts' native balance up.

Why top-ups rather than ERC-2771 meta-transactions: the contracts keep plain
``msg.sender`` semantics (no trusted forwarder to audit, nothing to change in them), every
custodial transaction is an ordinary one that any EVM node mines and any explorer shows,
and farmers, who rarely send transactions at all (cooperatives record lots for them and
payouts are pushed to them), cost nothing. The price is one top-up transaction per
``topup_wei`` of gas spent, sent through the outbox like every other write.
"""

from __future__ import annotations

import uuid

from eth_utils import to_checksum_address
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from konbit.chain.rpc import RpcClient
from konbit.outbox.models import PENDING, OutboxTx
from konbit.outbox.service import submit

TOPUP_FUNCTION = "gas-topup"


class TopUpSponsor:
    """Sends ``topup_wei`` from the operator to a sender whose balance runs low."""

    def __init__(self, engine: Engine, rpc: RpcClient, operator: str, *, topup_wei: int) -> None:
        self.engine = engine
        self.rpc = rpc
        self.operator = to_checksum_address(operator)
        self.topup_wei = topup_wei

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
            ).first()
            if on_its_way is None:
                submit(
                    session,
                    key=f"{TOPUP_FUNCTION}:{sender}:{uuid.uuid4().hex}",
                    sender=self.operator,
                    to=sender,
                    value=max(self.topup_wei, needed_wei),
                    function=TOPUP_FUNCTION,
                )
        return False

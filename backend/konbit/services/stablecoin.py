"""The test stablecoin of local chains: the operator's faucet for demos and tests."""

from __future__ import annotations

from konbit.access.keys import Actor
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import validate
from konbit.services.common import record, require_role
from konbit.services.errors import NotFound
from konbit.services.writes import Call, Outcome
from konbit.settings import LOCAL_CHAIN_IDS


def faucet(
    runtime: Runtime, actor: Actor, to: str, amount: int, *, idempotency_key: str | None = None
) -> Outcome:
    """Mint test stablecoins to an address (local chains only)."""
    require_role(actor, Role.OPERATOR)
    if runtime.chain_id not in LOCAL_CHAIN_IDS:
        raise NotFound("the faucet exists on local chains only")
    to = validate.address("address", to)
    amount = validate.uint("amount", amount, 128, minimum=1)
    call = Call("TestStablecoin", "faucet", [to, amount])
    payload = {"address": to, "amount": amount}
    return record(runtime, actor, "stablecoin.faucet", payload, [call], idempotency_key)

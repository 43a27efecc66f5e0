"""Finance matching: advance requests against funded orders, financiers' offers."""

from __future__ import annotations

from konbit.access.keys import Actor
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import parties, validate
from konbit.services.common import record, require_role
from konbit.services.writes import Call, Outcome


def request_advance(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    amount: int,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """The cooperative asks financiers for an advance against a funded order."""
    require_role(actor, Role.COOPERATIVE)
    order_id = validate.id_("order_id", order_id)
    amount = validate.uint("amount", amount, 128, minimum=1)
    parties.require_party(actor, parties.order(runtime, order_id).cooperative, f"order {order_id}")
    call = Call("FinanceMarket", "requestAdvance", [order_id, amount])
    payload = {"order_id": order_id, "amount": amount}
    return record(runtime, actor, "finance.request", payload, [call], idempotency_key)


def cancel_request(
    runtime: Runtime, actor: Actor, advance_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """Withdraw an advance request nobody has funded yet."""
    require_role(actor, Role.COOPERATIVE)
    advance_id = validate.id_("advance_id", advance_id)
    owner = parties.advance_cooperative(runtime, advance_id)
    parties.require_party(actor, owner, f"advance request {advance_id}")
    call = Call("FinanceMarket", "cancelRequest", [advance_id])
    payload = {"advance_id": advance_id}
    return record(runtime, actor, "finance.cancel_request", payload, [call], idempotency_key)


def accept_offer(
    runtime: Runtime, actor: Actor, offer_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """The cooperative accepts an offer: the tokens go to it, the escrow records a lien."""
    require_role(actor, Role.COOPERATIVE)
    offer_id = validate.id_("offer_id", offer_id)
    call = Call("FinanceMarket", "acceptOffer", [offer_id])
    payload = {"offer_id": offer_id}
    return record(runtime, actor, "finance.accept_offer", payload, [call], idempotency_key)


def make_offer(
    runtime: Runtime,
    actor: Actor,
    advance_id: int,
    amount: int,
    fee: int,
    expiry: int,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """A financier offers an advance; approve and offer are simulated as one."""
    require_role(actor, Role.FINANCIER)
    advance_id = validate.id_("advance_id", advance_id)
    amount = validate.uint("amount", amount, 128, minimum=1)
    fee = validate.uint("fee", fee, 128)
    expiry = validate.uint("expiry", expiry, 64)
    parties.advance_cooperative(runtime, advance_id)  # NotFound when unknown
    market = runtime.contracts().book.address("FinanceMarket")
    calls = [
        Call("TestStablecoin", "approve", [market, amount]),
        Call("FinanceMarket", "makeOffer", [advance_id, amount, fee, expiry]),
    ]
    payload = {"advance_id": advance_id, "amount": amount, "fee": fee, "expiry": expiry}
    return record(runtime, actor, "finance.offer", payload, calls, idempotency_key)


def withdraw_offer(
    runtime: Runtime, actor: Actor, offer_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """The financier withdraws an offer the cooperative has not accepted."""
    require_role(actor, Role.FINANCIER)
    offer_id = validate.id_("offer_id", offer_id)
    call = Call("FinanceMarket", "withdrawOffer", [offer_id])
    payload = {"offer_id": offer_id}
    return record(runtime, actor, "finance.withdraw_offer", payload, [call], idempotency_key)

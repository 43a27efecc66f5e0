"""Purchase orders and their escrow: propose, accept, fund, ship, confirm, dispute, settle."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from konbit.access.keys import Actor
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import parties, validate
from konbit.services.common import record, require_role
from konbit.services.errors import Conflict, InvalidInput
from konbit.services.writes import Call, Outcome

MAX_REJECTED_LOTS = 1000
MAX_SETTLE_LOTS = 5000


@dataclass(frozen=True)
class OrderInput:
    cooperative: str
    crop: int
    grams: int
    #: Token minor units per kilogram.
    price_per_kg: int
    delivery_deadline: int
    min_grade: int = 0
    coop_fee_bps: int = 0
    #: An allow-listed stablecoin; None: the local test one.
    token: str | None = None


def _order_id(order_id: int) -> int:
    return validate.id_("order_id", order_id)


def propose(
    runtime: Runtime, actor: Actor, order: OrderInput, *, idempotency_key: str | None = None
) -> Outcome:
    """Propose a purchase order to a cooperative."""
    require_role(actor, Role.EXPORTER)
    cooperative = validate.address("cooperative", order.cooperative)
    token = (
        validate.address("token", order.token)
        if order.token is not None
        else runtime.contracts().book.address("TestStablecoin")
    )
    checked = OrderInput(
        cooperative=cooperative,
        crop=validate.uint("crop", order.crop, 16, minimum=1),
        grams=validate.uint("grams", order.grams, 64, minimum=1),
        price_per_kg=validate.uint("price_per_kg", order.price_per_kg, 128, minimum=1),
        delivery_deadline=validate.uint("delivery_deadline", order.delivery_deadline, 64),
        min_grade=validate.uint("min_grade", order.min_grade, 8),
        coop_fee_bps=validate.uint("coop_fee_bps", order.coop_fee_bps, 14),
        token=token,
    )
    if checked.coop_fee_bps > 10_000:
        raise InvalidInput("coop_fee_bps must be at most 10000", field="coop_fee_bps")
    call = Call(
        "SaleEscrow",
        "propose",
        [
            cooperative,
            token,
            checked.crop,
            checked.grams,
            checked.price_per_kg,
            checked.min_grade,
            checked.delivery_deadline,
            checked.coop_fee_bps,
        ],
    )
    return record(runtime, actor, "orders.propose", asdict(checked), [call], idempotency_key)


def _as_exporter(runtime: Runtime, actor: Actor, order_id: int) -> parties.OrderParties:
    require_role(actor, Role.EXPORTER)
    found = parties.order(runtime, _order_id(order_id))
    parties.require_party(actor, found.exporter, f"order {order_id}")
    return found


def _as_cooperative(runtime: Runtime, actor: Actor, order_id: int) -> parties.OrderParties:
    require_role(actor, Role.COOPERATIVE)
    found = parties.order(runtime, _order_id(order_id))
    parties.require_party(actor, found.cooperative, f"order {order_id}")
    return found


def accept(
    runtime: Runtime, actor: Actor, order_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """The cooperative accepts an exporter's purchase order."""
    _as_cooperative(runtime, actor, order_id)
    call = Call("SaleEscrow", "accept", [order_id])
    return record(runtime, actor, "orders.accept", {"order_id": order_id}, [call], idempotency_key)


def fund(
    runtime: Runtime, actor: Actor, order_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """Lock the order's deposit in escrow: approve and fund, simulated as one."""
    order = _as_exporter(runtime, actor, order_id)
    contracts = runtime.contracts()
    if order.token.lower() != contracts.book.addresses.get("TestStablecoin", "").lower():
        raise Conflict(
            f"order {order_id} is paid in {order.token}, which this backend cannot approve"
        )
    calls = [
        Call("TestStablecoin", "approve", [contracts.book.address("SaleEscrow"), order.deposit]),
        Call("SaleEscrow", "fund", [order_id]),
    ]
    return record(runtime, actor, "orders.fund", {"order_id": order_id}, calls, idempotency_key)


def name_funder(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    financier: str | None,
    agreement_hash: str | None,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """The exporter names a financier to fund the order for it, with the hash of their
    agreement (the exporter's obligation to the financier, settled off chain); None: none."""
    _as_exporter(runtime, actor, order_id)
    if financier is None:
        address, agreement = parties.ZERO, validate.EMPTY_HASH
    else:
        address = validate.address("financier", financier)
        agreement = validate.hash32("agreement_hash", agreement_hash)
        if agreement == validate.EMPTY_HASH:
            raise InvalidInput("agreement_hash must not be empty", field="agreement_hash")
    call = Call("SaleEscrow", "nameFunder", [order_id, address, agreement])
    payload = {"order_id": order_id, "financier": address, "agreement_hash": agreement}
    return record(runtime, actor, "orders.name_funder", payload, [call], idempotency_key)


def fund_for(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    agreement_hash: str,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """The financier the exporter named funds the deposit for it (approve and fund, simulated
    as one); every refund of the order then goes to the financier."""
    require_role(actor, Role.FINANCIER)
    order = parties.order(runtime, _order_id(order_id))
    agreement_hash = validate.hash32("agreement_hash", agreement_hash)
    contracts = runtime.contracts()
    if order.token.lower() != contracts.book.addresses.get("TestStablecoin", "").lower():
        raise Conflict(
            f"order {order_id} is paid in {order.token}, which this backend cannot approve"
        )
    calls = [
        Call("TestStablecoin", "approve", [contracts.book.address("SaleEscrow"), order.deposit]),
        Call("SaleEscrow", "fundFor", [order_id, agreement_hash]),
    ]
    payload = {"order_id": order_id, "agreement_hash": agreement_hash}
    return record(runtime, actor, "orders.fund_for", payload, calls, idempotency_key)


def ship(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    consignment_id: int,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Mark the order shipped with its consignment (the lots are locked)."""
    _as_cooperative(runtime, actor, order_id)
    consignment_id = validate.id_("consignment_id", consignment_id)
    call = Call("SaleEscrow", "markShipped", [order_id, consignment_id])
    payload = {"order_id": order_id, "consignment_id": consignment_id}
    return record(runtime, actor, "orders.ship", payload, [call], idempotency_key)


def confirm_delivery(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    accepted_grams: int,
    rejected_lots: list[int],
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Confirm delivery: the grams accepted and the lots rejected; payment = grams x price."""
    _as_exporter(runtime, actor, order_id)
    accepted_grams = validate.uint("accepted_grams", accepted_grams, 64)
    rejected = (
        validate.ids("rejected_lots", rejected_lots, max_items=MAX_REJECTED_LOTS)
        if rejected_lots
        else []
    )
    call = Call("SaleEscrow", "confirmDelivery", [order_id, accepted_grams, rejected])
    payload = {"order_id": order_id, "accepted_grams": accepted_grams, "rejected_lots": rejected}
    return record(runtime, actor, "orders.confirm", payload, [call], idempotency_key)


def dispute(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    reason_hash: str,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """The exporter or the cooperative disputes a delivery within the window."""
    require_role(actor, Role.EXPORTER, Role.COOPERATIVE)
    order = parties.order(runtime, _order_id(order_id))
    party = order.exporter if actor.role == Role.EXPORTER else order.cooperative
    parties.require_party(actor, party, f"order {order_id}")
    reason_hash = validate.hash32("reason_hash", reason_hash)
    call = Call("SaleEscrow", "dispute", [order_id, reason_hash])
    payload = {"order_id": order_id, "reason_hash": reason_hash}
    return record(runtime, actor, "orders.dispute", payload, [call], idempotency_key)


def cancel(
    runtime: Runtime, actor: Actor, order_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """Cancel an order before it is funded."""
    _as_exporter(runtime, actor, order_id)
    call = Call("SaleEscrow", "cancel", [order_id])
    return record(runtime, actor, "orders.cancel", {"order_id": order_id}, [call], idempotency_key)


def refund(
    runtime: Runtime, actor: Actor, order_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """Return the deposit to whoever funded it (the exporter, or the financier that funded the
    order for it) after the deadline passed without delivery."""
    _as_exporter(runtime, actor, order_id)
    call = Call("SaleEscrow", "refund", [order_id])
    return record(runtime, actor, "orders.refund", {"order_id": order_id}, [call], idempotency_key)


def settle(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    max_lots: int,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Advance an order's settlement by up to ``max_lots`` lots (call again until settled)."""
    require_role(actor, Role.OPERATOR)
    parties.order(runtime, _order_id(order_id))  # NotFound when unknown
    max_lots = validate.uint("max_lots", max_lots, 64, minimum=1)
    if max_lots > MAX_SETTLE_LOTS:
        raise InvalidInput(f"max_lots must be at most {MAX_SETTLE_LOTS}", field="max_lots")
    call = Call("SaleEscrow", "settle", [order_id, max_lots])
    payload = {"order_id": order_id, "max_lots": max_lots}
    return record(runtime, actor, "orders.settle", payload, [call], idempotency_key)


def resolve_dispute(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    payment: int,
    ruling_hash: str,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """An arbiter fixes the payment due to the sellers; the rest returns to the exporter."""
    require_role(actor, Role.ARBITER)
    parties.order(runtime, _order_id(order_id))
    payment = validate.uint("payment", payment, 128)
    ruling_hash = validate.hash32("ruling_hash", ruling_hash)
    call = Call("SaleEscrow", "resolveDispute", [order_id, payment, ruling_hash])
    payload = {"order_id": order_id, "payment": payment, "ruling_hash": ruling_hash}
    return record(runtime, actor, "orders.resolve", payload, [call], idempotency_key)

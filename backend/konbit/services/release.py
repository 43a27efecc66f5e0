"""The release agent of an order: a financier the exporter and the cooperative agree on before
funding, who checks the shipping documents and releases the escrow or refuses.

- Either party proposes the agent (or none) and the seconds it has after the dispute window;
  the other party agrees to the same agent and window.
- After delivery the cooperative, or the order's carrier, presents the documents as hashes
  (bill of lading, phytosanitary and hot-water treatment certificates, the buyer's receipt).
- The agent releases against the documents it checked (waiving the rest of the dispute
  window or not), or refuses with a reason hash: the order is then disputed and the arbiter
  rules. An agent that does nothing never freezes the money: after its deadline anyone may
  settle (``orders.settle``).
"""

from __future__ import annotations

from sqlmodel import Session

from konbit.access.keys import Actor
from konbit.mirror.models import SaleOrder
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import parties, validate
from konbit.services.common import record, require_role
from konbit.services.errors import InvalidInput
from konbit.services.writes import Call, Outcome

#: SaleEscrow.MAX_AGENT_WINDOW: the agent acts within at most 30 days after the dispute window.
MAX_AGENT_WINDOW = 30 * 86400
#: Documents presented at once (each a 32-byte hash).
MAX_DOCUMENTS = 32
ZERO = parties.ZERO


def _party(runtime: Runtime, actor: Actor, order_id: int) -> None:
    """The exporter or the cooperative of the order, acting for itself."""
    require_role(actor, Role.EXPORTER, Role.COOPERATIVE)
    order = parties.order(runtime, order_id)
    party = order.exporter if actor.role == Role.EXPORTER else order.cooperative
    parties.require_party(actor, party, f"order {order_id}")


def _agent_terms(agent: str | None, window: int) -> tuple[str, int]:
    """(agent address, window) as the contract takes them; no agent is (zero, 0)."""
    if agent is None:
        if window != 0:
            raise InvalidInput(
                "window_seconds must be 0 when no agent is named", field="window_seconds"
            )
        return ZERO, 0
    checked = validate.address("agent", agent)
    window = validate.uint("window_seconds", window, 32, minimum=1)
    if window > MAX_AGENT_WINDOW:
        raise InvalidInput(
            f"window_seconds must be at most {MAX_AGENT_WINDOW} (30 days)", field="window_seconds"
        )
    return checked, window


def _agent_terms_call(
    runtime: Runtime,
    actor: Actor,
    operation: str,
    function: str,
    order_id: int,
    agent: str | None,
    window_seconds: int,
    idempotency_key: str | None,
) -> Outcome:
    """Propose or agree: the same checks and terms, a different contract function."""
    order_id = validate.id_("order_id", order_id)
    _party(runtime, actor, order_id)
    address, window = _agent_terms(agent, window_seconds)
    call = Call("SaleEscrow", function, [order_id, address, window])
    payload = {"order_id": order_id, "agent": address, "window_seconds": window}
    return record(runtime, actor, operation, payload, [call], idempotency_key)


def propose_agent(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    agent: str | None,
    window_seconds: int,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """Propose a financier as the order's release agent (None: no agent), before funding."""
    return _agent_terms_call(
        runtime,
        actor,
        "release.propose_agent",
        "proposeReleaseAgent",
        order_id,
        agent,
        window_seconds,
        idempotency_key,
    )


def agree_agent(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    agent: str | None,
    window_seconds: int,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """The other party agrees to the proposed agent and window (named again: no surprise)."""
    return _agent_terms_call(
        runtime,
        actor,
        "release.agree_agent",
        "agreeReleaseAgent",
        order_id,
        agent,
        window_seconds,
        idempotency_key,
    )


def present_documents(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    document_hashes: list[str],
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """The cooperative (or the order's carrier) presents the shipping documents' hashes."""
    require_role(actor, Role.COOPERATIVE, Role.LOGISTICS)
    order_id = validate.id_("order_id", order_id)
    order = parties.order(runtime, order_id)
    if actor.role == Role.COOPERATIVE:
        parties.require_party(actor, order.cooperative, f"order {order_id}")
    else:
        parties.require_party(actor, _carrier(runtime, order_id), f"order {order_id}")
    if not isinstance(document_hashes, list) or not 1 <= len(document_hashes) <= MAX_DOCUMENTS:
        raise InvalidInput(
            f"document_hashes must hold 1 to {MAX_DOCUMENTS} hashes", field="document_hashes"
        )
    hashes = [validate.hash32(f"document_hashes[{i}]", h) for i, h in enumerate(document_hashes)]
    call = Call("SaleEscrow", "presentDocuments", [order_id, hashes])
    payload = {"order_id": order_id, "document_hashes": hashes}
    return record(runtime, actor, "release.present_documents", payload, [call], idempotency_key)


def release(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    documents_hash: str,
    waive_dispute_window: bool,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """The agent releases the escrow against the documents it checked (their combined hash)."""
    order_id = validate.id_("order_id", order_id)
    _as_agent(runtime, actor, order_id)
    documents_hash = validate.hash32("documents_hash", documents_hash)
    if not isinstance(waive_dispute_window, bool):
        raise InvalidInput(
            "waive_dispute_window must be true or false", field="waive_dispute_window"
        )
    call = Call("SaleEscrow", "release", [order_id, documents_hash, waive_dispute_window])
    payload = {
        "order_id": order_id,
        "documents_hash": documents_hash,
        "waive_dispute_window": waive_dispute_window,
    }
    return record(runtime, actor, "release.release", payload, [call], idempotency_key)


def refuse(
    runtime: Runtime,
    actor: Actor,
    order_id: int,
    reason_hash: str,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """The agent refuses to release: the order is disputed and goes to the arbiter."""
    order_id = validate.id_("order_id", order_id)
    _as_agent(runtime, actor, order_id)
    reason_hash = validate.hash32("reason_hash", reason_hash)
    call = Call("SaleEscrow", "refuseRelease", [order_id, reason_hash])
    payload = {"order_id": order_id, "reason_hash": reason_hash}
    return record(runtime, actor, "release.refuse", payload, [call], idempotency_key)


def _as_agent(runtime: Runtime, actor: Actor, order_id: int) -> None:
    require_role(actor, Role.FINANCIER)
    parties.order(runtime, order_id)  # NotFound when unknown
    parties.require_party(actor, _agent(runtime, order_id, actor), f"order {order_id}")


def _agent(runtime: Runtime, order_id: int, actor: Actor) -> str | None:
    """The order's release agent: the mirror's, re-read live when it is not the actor (the
    mirror may not have seen the agreement yet)."""
    with Session(runtime.engine) as session:
        row = session.get(SaleOrder, order_id)
    known = row.release_agent if row is not None else None
    if known is not None and known.lower() == actor.organisation.lower():
        return known
    live = runtime.contracts().call_named("SaleEscrow", "releases", order_id)
    agent = str(live["agent"])
    return None if agent.lower() == ZERO else agent


def _carrier(runtime: Runtime, order_id: int) -> str | None:
    """The carrier the order's waterfall pays (the mirror's, else the chain's)."""
    with Session(runtime.engine) as session:
        row = session.get(SaleOrder, order_id)
    if row is not None and row.carrier is not None:
        return row.carrier
    live = runtime.contracts().call_named("SaleEscrow", "carriers", order_id)
    carrier = str(live["carrier"])
    return None if carrier.lower() == ZERO else carrier

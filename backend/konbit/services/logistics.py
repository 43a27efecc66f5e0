"""Logistics matching: transport jobs, carriers' bids, award, pickup and delivery."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from konbit.access.keys import Actor
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import parties, validate
from konbit.services.common import record, require_role
from konbit.services.writes import Call, Outcome


@dataclass(frozen=True)
class JobInput:
    consignment_id: int
    pickup_geohash: str
    dropoff_geohash: str
    deadline: int
    max_fee: int


def post_job(
    runtime: Runtime, actor: Actor, job: JobInput, *, idempotency_key: str | None = None
) -> Outcome:
    """The cooperative posts a transport job for one of its consignments."""
    require_role(actor, Role.COOPERATIVE)
    checked = JobInput(
        consignment_id=validate.id_("consignment_id", job.consignment_id),
        pickup_geohash=validate.area("pickup_geohash", job.pickup_geohash),
        dropoff_geohash=validate.area("dropoff_geohash", job.dropoff_geohash),
        deadline=validate.uint("deadline", job.deadline, 64),
        max_fee=validate.uint("max_fee", job.max_fee, 128, minimum=1),
    )
    owner = parties.consignment_cooperative(runtime, checked.consignment_id)
    parties.require_party(actor, owner, f"consignment {checked.consignment_id}")
    call = Call(
        "LogisticsMarket",
        "postJob",
        [
            checked.consignment_id,
            validate.area_bytes(checked.pickup_geohash),
            validate.area_bytes(checked.dropoff_geohash),
            checked.deadline,
            checked.max_fee,
        ],
    )
    return record(runtime, actor, "logistics.post_job", asdict(checked), [call], idempotency_key)


def _own_job(runtime: Runtime, actor: Actor, job_id: int) -> int:
    require_role(actor, Role.COOPERATIVE)
    job_id = validate.id_("job_id", job_id)
    parties.require_party(actor, parties.job(runtime, job_id).cooperative, f"job {job_id}")
    return job_id


def award(
    runtime: Runtime, actor: Actor, job_id: int, bid_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """Award a job to one carrier's bid."""
    job_id = _own_job(runtime, actor, job_id)
    bid_id = validate.id_("bid_id", bid_id)
    call = Call("LogisticsMarket", "awardJob", [job_id, bid_id])
    payload = {"job_id": job_id, "bid_id": bid_id}
    return record(runtime, actor, "logistics.award", payload, [call], idempotency_key)


def cancel_job(
    runtime: Runtime, actor: Actor, job_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """Cancel a job before pickup."""
    job_id = _own_job(runtime, actor, job_id)
    call = Call("LogisticsMarket", "cancelJob", [job_id])
    return record(runtime, actor, "logistics.cancel", {"job_id": job_id}, [call], idempotency_key)


def place_bid(
    runtime: Runtime,
    actor: Actor,
    job_id: int,
    fee: int,
    eta: int,
    *,
    idempotency_key: str | None = None,
) -> Outcome:
    """A carrier bids on an open job: a fee and an estimated arrival time."""
    require_role(actor, Role.LOGISTICS)
    job_id = validate.id_("job_id", job_id)
    fee = validate.uint("fee", fee, 128, minimum=1)
    eta = validate.uint("eta", eta, 64)
    parties.job(runtime, job_id)  # NotFound when unknown
    call = Call("LogisticsMarket", "placeBid", [job_id, fee, eta])
    payload = {"job_id": job_id, "fee": fee, "eta": eta}
    return record(runtime, actor, "logistics.bid", payload, [call], idempotency_key)


def withdraw_bid(
    runtime: Runtime, actor: Actor, bid_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """Withdraw a bid that was not awarded."""
    require_role(actor, Role.LOGISTICS)
    bid_id = validate.id_("bid_id", bid_id)
    call = Call("LogisticsMarket", "withdrawBid", [bid_id])
    payload = {"bid_id": bid_id}
    return record(runtime, actor, "logistics.withdraw_bid", payload, [call], idempotency_key)


def _carrier_job(runtime: Runtime, actor: Actor, job_id: int) -> int:
    require_role(actor, Role.LOGISTICS)
    job_id = validate.id_("job_id", job_id)
    carrier = parties.job(runtime, job_id, carrier=actor.organisation).carrier
    parties.require_party(actor, carrier, f"job {job_id}")
    return job_id


def pickup(
    runtime: Runtime, actor: Actor, job_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """Record the pickup of an awarded job (the carrier must hold custody)."""
    job_id = _carrier_job(runtime, actor, job_id)
    call = Call("LogisticsMarket", "recordPickup", [job_id])
    return record(runtime, actor, "logistics.pickup", {"job_id": job_id}, [call], idempotency_key)


def delivery(
    runtime: Runtime, actor: Actor, job_id: int, *, idempotency_key: str | None = None
) -> Outcome:
    """Record delivery once custody passed on from the carrier."""
    job_id = _carrier_job(runtime, actor, job_id)
    call = Call("LogisticsMarket", "recordDelivery", [job_id])
    return record(runtime, actor, "logistics.delivery", {"job_id": job_id}, [call], idempotency_key)

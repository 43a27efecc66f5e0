"""From decoded events to projection rows: one handler per Konbit event.

Handlers read only the event (and rows earlier events produced): principle 2, events carry
everything. They write through a ``WriteBuffer`` so a chunk of thousands of events costs
a handful of bulk statements. ``Projector.apply`` must see events in chain order
(block, transaction index, log index).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from eth_utils import keccak

from konbit.mirror.buffer import WriteBuffer
from konbit.mirror.decoding import Event
from konbit.mirror.models import (
    PAYOUT_KINDS,
    Advance,
    AdvanceDefault,
    AdvanceOffer,
    AdvanceRepayment,
    AdvanceStatus,
    Consignment,
    ConsignmentLot,
    ConsignmentStatus,
    ContractSetting,
    CustodyTransfer,
    EscrowMovement,
    Farmer,
    Inspection,
    InspectionResult,
    JobStatus,
    Lien,
    Lot,
    LotEvent,
    LotSplitRow,
    LotStatus,
    OfferStatus,
    OrderStatus,
    OrderStatusChange,
    Organisation,
    Payout,
    ReleaseState,
    RoleGrant,
    SaleOrder,
    TransportBid,
    TransportJob,
)
from konbit.mirror.types import INT64_MAX
from konbit.roles import SYSTEM_ROLES, Role

#: Role id (0x-hex) -> the registry's constant name, from the one list in ``konbit.roles``.
ROLE_NAMES: dict[str, str] = {
    "0x" + "00" * 32: "DEFAULT_ADMIN_ROLE",
    **{role.role_id: role.registry_constant for role in Role},
    **{"0x" + keccak(text=name).hex(): name for name, _holder in SYSTEM_ROLES},
}


ZERO_ADDRESS = "0x" + "00" * 20


def _i64(value: int) -> int:
    """uint64 times and party-chosen ids, clamped to BIGINT (exact value stays in args)."""
    return value if value <= INT64_MAX else INT64_MAX


def _named(address: str) -> str | None:
    """An address the contract may leave zero ("none"), as null."""
    return None if address.lower() == ZERO_ADDRESS else address


class Projector:
    """Applies events to the projection through a write buffer."""

    def __init__(self) -> None:
        buf = self.buffer = WriteBuffer()
        self.organisations = buf.keyed(Organisation)
        self.roles = buf.keyed(RoleGrant)
        self.farmers = buf.keyed(Farmer)
        self.lots = buf.keyed(Lot)
        self.lot_events = buf.append(LotEvent)
        self.splits = buf.append(LotSplitRow)
        self.consignments = buf.keyed(Consignment)
        self.consignment_lots = buf.keyed(ConsignmentLot)
        self.inspections = buf.append(Inspection)
        self.custody = buf.append(CustodyTransfer)
        self.orders = buf.keyed(SaleOrder)
        self.order_statuses = buf.append(OrderStatusChange)
        self.movements = buf.append(EscrowMovement)
        self.payouts = buf.append(Payout)
        self.liens = buf.keyed(Lien)
        self.jobs = buf.keyed(TransportJob)
        self.bids = buf.keyed(TransportBid)
        self.advances = buf.keyed(Advance)
        self.offers = buf.keyed(AdvanceOffer)
        self.repayments = buf.append(AdvanceRepayment)
        self.defaults = buf.append(AdvanceDefault)
        self.settings = buf.keyed(ContractSetting)
        self._handlers: dict[str, Callable[[Event], None]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("on_")
        }

    @property
    def event_names(self) -> set[str]:
        return set(self._handlers)

    def apply(self, events: Iterable[Event]) -> int:
        """Apply events in chain order; returns how many had a handler."""
        handlers = self._handlers
        applied = 0
        for ev in events:
            handler = handlers.get(ev.name)
            if handler is not None:
                handler(ev)
                applied += 1
        return applied

    # ------------------------------------------------------------------ helpers

    def _lot_history(self, ev: Event, lot_id: int) -> None:
        self.lot_events.add(
            {
                "lot_id": lot_id,
                "block_number": ev.block_number,
                "log_index": ev.log_index,
                "kind": ev.name,
            }
        )

    def _setting(self, ev: Event, name: str, value: str) -> None:
        key = (ev.contract, name)
        self.settings.upsert(
            key,
            {
                "contract": ev.contract,
                "name": name,
                "value": value,
                "updated_block": ev.block_number,
            },
        )

    def _order_token(self, order_id: int) -> str:
        order = self.orders.get(order_id)
        return str(order["token"]) if order is not None else "0x" + "00" * 20

    def _movement(
        self, ev: Event, order_id: int, direction: str, kind: str, party: str, amount: int
    ) -> None:
        self.movements.add(
            {
                "block_number": ev.block_number,
                "log_index": ev.log_index,
                "tx_hash": ev.tx_hash,
                "order_id": order_id,
                "token": self._order_token(order_id),
                "direction": direction,
                "kind": kind,
                "counterparty": party,
                "amount": amount,
            }
        )

    # ------------------------------------------------------------------ ClusterRegistry

    def on_OrganisationRegistered(self, ev: Event) -> None:
        a = ev.args
        org = a["organisation"]
        if self.organisations.get(org) is None:
            self.organisations.new(
                org,
                {
                    "address": org,
                    "metadata_hash": a["metadataHash"],
                    "registered_by": a["operator"],
                    "created_block": ev.block_number,
                    "updated_block": ev.block_number,
                },
            )
        else:
            self.organisations.update(
                org, metadata_hash=a["metadataHash"], updated_block=ev.block_number
            )

    def on_OrganisationMetadataUpdated(self, ev: Event) -> None:
        a = ev.args
        self.organisations.update(
            a["organisation"], metadata_hash=a["metadataHash"], updated_block=ev.block_number
        )

    def _role(self, ev: Event, active: bool) -> None:
        a = ev.args
        self.roles.upsert(
            (a["role"], a["account"]),
            {
                "role": a["role"],
                "account": a["account"],
                "role_name": ROLE_NAMES.get(a["role"], "unknown"),
                "active": active,
                "sender": a["sender"],
                "updated_block": ev.block_number,
            },
        )

    def on_RoleGranted(self, ev: Event) -> None:
        self._role(ev, True)

    def on_RoleRevoked(self, ev: Event) -> None:
        self._role(ev, False)

    def on_FarmerEnrolled(self, ev: Event) -> None:
        a = ev.args
        self.farmers.new(
            a["farmer"],
            {
                "address": a["farmer"],
                "cooperative": a["cooperative"],
                "active": True,
                "created_block": ev.block_number,
                "updated_block": ev.block_number,
            },
        )

    def on_FarmerStatusChanged(self, ev: Event) -> None:
        a = ev.args
        self.farmers.update(a["farmer"], active=a["active"], updated_block=ev.block_number)

    # ------------------------------------------------------------------ Traceability

    def on_LotRecorded(self, ev: Event) -> None:
        a = ev.args
        lot_id = a["lotId"]
        self.lots.new(
            lot_id,
            {
                "lot_id": lot_id,
                "farmer": a["farmer"],
                "cooperative": a["cooperative"],
                "crop": a["crop"],
                "grams": a["grams"],
                "grade": a["grade"],
                "harvest_time": _i64(a["harvestTime"]),
                "plot_geohash": a["plotGeohash"],
                "plot_commitment": a["plotCommitment"],
                "evidence_hash": a["evidenceHash"],
                "status": LotStatus.ACTIVE,
                "inspection": InspectionResult.NONE,
                "paid_amount": 0,
                "created_block": ev.block_number,
                "updated_block": ev.block_number,
            },
        )
        self._lot_history(ev, lot_id)

    def on_LotSplit(self, ev: Event) -> None:
        a = ev.args
        parent_id, child_id = a["parentLotId"], a["childLotId"]
        parent = self.lots.get(parent_id) or {}
        self.lots.update(parent_id, status=LotStatus.SPLIT, updated_block=ev.block_number)
        self.lots.new(
            child_id,
            {
                "lot_id": child_id,
                "farmer": a["farmer"],
                "cooperative": parent.get("cooperative", ""),
                "crop": parent.get("crop", 0),
                "grams": a["grams"],
                "grade": a["grade"],
                "harvest_time": parent.get("harvest_time", 0),
                "plot_geohash": parent.get("plot_geohash", ""),
                "plot_commitment": parent.get("plot_commitment", "0x" + "00" * 32),
                "evidence_hash": parent.get("evidence_hash", ""),
                "status": LotStatus.ACTIVE,
                "inspection": a["inspection"],
                "parent_lot_id": parent_id,
                "paid_amount": 0,
                "created_block": ev.block_number,
                "updated_block": ev.block_number,
            },
        )
        self.splits.add(
            {
                "parent_lot_id": parent_id,
                "child_lot_id": child_id,
                "grams": a["grams"],
                "block_number": ev.block_number,
            }
        )
        self._lot_history(ev, parent_id)
        self._lot_history(ev, child_id)

    def on_ConsignmentCreated(self, ev: Event) -> None:
        a = ev.args
        cid = a["consignmentId"]
        self.consignments.new(
            cid,
            {
                "consignment_id": cid,
                "cooperative": a["cooperative"],
                "order_id": _i64(a["orderId"]),
                "min_grade": a["minGrade"],
                "status": ConsignmentStatus.OPEN,
                "lot_count": 0,
                "total_grams": 0,
                "eligible_grams": 0,
                "custodian": a["cooperative"],
                "custody_since": ev.block_time,
                "created_block": ev.block_number,
                "updated_block": ev.block_number,
            },
        )

    def _membership(self, ev: Event, delta: int) -> None:
        a = ev.args
        cid = a["consignmentId"]
        consignment = self.consignments.get(cid)
        count = (consignment["lot_count"] if consignment else 0) + delta
        self.consignments.update(
            cid,
            lot_count=count,
            total_grams=a["totalGrams"],
            eligible_grams=a["eligibleGrams"],
            updated_block=ev.block_number,
        )
        self._lot_history(ev, a["lotId"])

    def on_LotAddedToConsignment(self, ev: Event) -> None:
        a = ev.args
        cid, lot_id = a["consignmentId"], a["lotId"]
        self._membership(ev, +1)
        self.lots.update(lot_id, consignment_id=cid, updated_block=ev.block_number)
        self.consignment_lots.new(
            (cid, lot_id),
            {
                "consignment_id": cid,
                "lot_id": lot_id,
                "grams": a["grams"],
                "added_block": ev.block_number,
            },
        )

    def on_LotRemovedFromConsignment(self, ev: Event) -> None:
        a = ev.args
        self._membership(ev, -1)
        self.lots.update(a["lotId"], consignment_id=None, updated_block=ev.block_number)
        self.consignment_lots.delete((a["consignmentId"], a["lotId"]))

    def on_ConsignmentStatusChanged(self, ev: Event) -> None:
        a = ev.args
        self.consignments.update(
            a["consignmentId"],
            status=a["status"],
            total_grams=a["totalGrams"],
            eligible_grams=a["eligibleGrams"],
            updated_block=ev.block_number,
        )

    def on_LotRejected(self, ev: Event) -> None:
        a = ev.args
        self.lots.update(a["lotId"], status=LotStatus.REJECTED, updated_block=ev.block_number)
        self._lot_history(ev, a["lotId"])

    def on_LotInspected(self, ev: Event) -> None:
        a = ev.args
        lot_id, cid = a["lotId"], a["consignmentId"]
        result = InspectionResult.PASSED if a["passed"] else InspectionResult.FAILED
        self.lots.update(lot_id, grade=a["grade"], inspection=result, updated_block=ev.block_number)
        if cid:
            self.consignments.update(
                cid, eligible_grams=a["eligibleGrams"], updated_block=ev.block_number
            )
        self.inspections.add(
            {
                "block_number": ev.block_number,
                "log_index": ev.log_index,
                "tx_hash": ev.tx_hash,
                "lot_id": lot_id,
                "consignment_id": cid or None,
                "inspector": a["inspector"],
                "passed": a["passed"],
                "grade": a["grade"],
                "certificate_hash": a["certificateHash"],
                "eligible_grams": a["eligibleGrams"] if cid else None,
            }
        )
        self._lot_history(ev, lot_id)

    def on_ConsignmentInspected(self, ev: Event) -> None:
        a = ev.args
        self.inspections.add(
            {
                "block_number": ev.block_number,
                "log_index": ev.log_index,
                "tx_hash": ev.tx_hash,
                "lot_id": None,
                "consignment_id": a["consignmentId"],
                "inspector": a["inspector"],
                "passed": a["passed"],
                "grade": a["grade"],
                "certificate_hash": a["certificateHash"],
                "eligible_grams": None,
            }
        )

    def _custody(self, ev: Event, kind: str) -> None:
        a = ev.args
        self.custody.add(
            {
                "block_number": ev.block_number,
                "log_index": ev.log_index,
                "tx_hash": ev.tx_hash,
                "consignment_id": a["consignmentId"],
                "kind": kind,
                "from_address": a["from"],
                "to_address": a["to"],
                "at": _i64(a["at"]),
                "geohash": a["geohash"],
                "evidence_hash": a["evidenceHash"],
                "block_time": ev.block_time,
            }
        )

    def on_CustodyHandedOver(self, ev: Event) -> None:
        a = ev.args
        self.consignments.update(
            a["consignmentId"], pending_custodian=a["to"], updated_block=ev.block_number
        )
        self._custody(ev, "handover")

    def on_CustodyReceived(self, ev: Event) -> None:
        a = ev.args
        self.consignments.update(
            a["consignmentId"],
            previous_custodian=a["from"],
            custodian=a["to"],
            pending_custodian=None,
            custody_since=ev.block_time,
            updated_block=ev.block_number,
        )
        self._custody(ev, "receipt")

    # ------------------------------------------------------------------ SaleEscrow

    def on_TokenAllowed(self, ev: Event) -> None:
        a = ev.args
        self._setting(ev, f"allowedToken:{a['token']}", "true" if a["allowed"] else "false")

    def on_DisputeWindowSet(self, ev: Event) -> None:
        self._setting(ev, "disputeWindow", str(ev.args["seconds_"]))

    def on_OrderProposed(self, ev: Event) -> None:
        a = ev.args
        oid = a["orderId"]
        self.orders.new(
            oid,
            {
                "order_id": oid,
                "exporter": a["exporter"],
                "cooperative": a["cooperative"],
                "token": a["token"],
                "crop": a["crop"],
                "grams": a["grams"],
                "price_per_kg": a["pricePerKg"],
                "min_grade": a["minGrade"],
                "delivery_deadline": _i64(a["deliveryDeadline"]),
                "coop_fee_bps": a["coopFeeBps"],
                "deposit": a["deposit"],
                "status": OrderStatus.PROPOSED,
                "release_state": ReleaseState.NONE,
                "created_block": ev.block_number,
                "updated_block": ev.block_number,
            },
        )

    def on_OrderStatusChanged(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(a["orderId"], status=a["status"], updated_block=ev.block_number)
        self.order_statuses.add(
            {
                "block_number": ev.block_number,
                "log_index": ev.log_index,
                "tx_hash": ev.tx_hash,
                "order_id": a["orderId"],
                "status": a["status"],
                "actor": a["by"],
            }
        )

    def on_OrderFunded(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(a["orderId"], funder=a["funder"], updated_block=ev.block_number)
        self._movement(ev, a["orderId"], "in", "deposit", a["funder"], a["amount"])

    def on_FunderNamed(self, ev: Event) -> None:
        a = ev.args
        financier = _named(a["financier"])
        self.orders.update(
            a["orderId"],
            funding_financier=financier,
            funding_agreement_hash=a["agreementHash"] if financier else None,
            updated_block=ev.block_number,
        )

    def on_ReleaseAgentProposed(self, ev: Event) -> None:
        a = ev.args
        agent = _named(a["agent"])
        self.orders.update(
            a["orderId"],
            release_agent=agent,
            agent_window=a["window"] if agent else None,
            agent_proposed_by=a["by"],
            release_state=ReleaseState.PROPOSED,
            updated_block=ev.block_number,
        )

    def on_ReleaseAgentAgreed(self, ev: Event) -> None:
        a = ev.args
        if _named(a["agent"]) is None:  # agreed to have no agent
            self.orders.update(
                a["orderId"],
                release_agent=None,
                agent_window=None,
                agent_proposed_by=None,
                release_state=ReleaseState.NONE,
                updated_block=ev.block_number,
            )
        else:
            self.orders.update(
                a["orderId"], release_state=ReleaseState.AGREED, updated_block=ev.block_number
            )

    def on_DocumentsPresented(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(
            a["orderId"],
            release_state=ReleaseState.PRESENTED,
            documents_hash=a["documentsHash"],
            document_hashes=json.dumps(a["documentHashes"]),
            documents_presented_by=a["by"],
            agent_deadline=_i64(a["agentDeadline"]),
            updated_block=ev.block_number,
        )

    def on_EscrowReleased(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(
            a["orderId"],
            release_state=ReleaseState.RELEASED,
            release_waived=a["disputeWindowWaived"],
            updated_block=ev.block_number,
        )

    def on_ReleaseRefused(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(
            a["orderId"],
            release_state=ReleaseState.REFUSED,
            release_reason_hash=a["reasonHash"],
            updated_block=ev.block_number,
        )

    def on_ReleaseAgentLapsed(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(
            a["orderId"],
            release_state=ReleaseState.LAPSED,
            agent_deadline=_i64(a["agentDeadline"]),
            updated_block=ev.block_number,
        )

    def on_OrderShipped(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(
            a["orderId"], consignment_id=a["consignmentId"], updated_block=ev.block_number
        )

    def on_DeliveryConfirmed(self, ev: Event) -> None:
        a = ev.args
        order = self.orders.get(a["orderId"]) or {}
        window = order.get("agent_window") if order.get("release_agent") else None
        self.orders.update(
            a["orderId"],
            accepted_grams=a["acceptedGrams"],
            eligible_grams=a["eligibleGrams"],
            payment=a["payment"],
            dispute_until=_i64(a["disputeUntil"]),
            rejected_lots=json.dumps(a["rejectedLots"]),
            # The agent's deadline: the dispute window plus the agreed agent window (the
            # order's agreement events came first; DocumentsPresented repeats it).
            agent_deadline=_i64(a["disputeUntil"] + window) if window else None,
            updated_block=ev.block_number,
        )

    def on_OrderDisputed(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(
            a["orderId"],
            disputed_by=a["by"],
            dispute_reason_hash=a["reasonHash"],
            updated_block=ev.block_number,
        )

    def on_DisputeResolved(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(
            a["orderId"],
            arbiter=a["arbiter"],
            payment=a["payment"],
            ruling_hash=a["rulingHash"],
            updated_block=ev.block_number,
        )

    def on_OrderRefunded(self, ev: Event) -> None:
        a = ev.args
        self._movement(ev, a["orderId"], "out", "refund", a["funder"], a["amount"])

    def on_LienRegistered(self, ev: Event) -> None:
        a = ev.args
        oid = a["orderId"]
        self.liens.new(
            oid,
            {
                "order_id": oid,
                "advance_id": a["advanceId"],
                "financier": a["financier"],
                "market": a["market"],
                "amount_due": a["amountDue"],
                "created_block": ev.block_number,
            },
        )

    def on_LienSettled(self, ev: Event) -> None:
        a = ev.args
        self.liens.update(
            a["orderId"],
            repaid=a["repaid"],
            defaulted=a["defaulted"],
            settled_block=ev.block_number,
        )

    def on_CarrierSet(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(
            a["orderId"],
            carrier=a["carrier"],
            carrier_job_id=a["jobId"],
            carrier_fee=a["fee"],
            updated_block=ev.block_number,
        )

    def on_CarrierCleared(self, ev: Event) -> None:
        self.orders.update(
            ev.args["orderId"],
            carrier=None,
            carrier_job_id=None,
            carrier_fee=None,
            updated_block=ev.block_number,
        )

    def on_SettlementStarted(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(
            a["orderId"],
            farmer_pool=a["farmerPool"],
            paid_to_farmers=0,
            settle_cursor=0,
            updated_block=ev.block_number,
        )

    def _payout(
        self, ev: Event, kind: str, payee: str, amount: int, lot: int | None, grams: int | None
    ) -> None:
        oid = ev.args["orderId"]
        self.payouts.add(
            {
                "block_number": ev.block_number,
                "log_index": ev.log_index,
                "tx_hash": ev.tx_hash,
                "order_id": oid,
                "payee": payee,
                "kind": kind,
                "lot_id": lot,
                "grams": grams,
                "amount": amount,
            }
        )
        self._movement(ev, oid, "out", kind, payee, amount)

    def on_WaterfallPaid(self, ev: Event) -> None:
        a = ev.args
        kind = PAYOUT_KINDS.get(a["kind"], f"kind{a['kind']}")
        self._payout(ev, kind, a["payee"], a["amount"], None, None)

    def on_FarmerPaid(self, ev: Event) -> None:
        a = ev.args
        # A lot is paid at most once: after settlement its consignment is closed for good.
        self.lots.update(a["lotId"], paid_amount=a["amount"], updated_block=ev.block_number)
        self._payout(ev, "farmer", a["farmer"], a["amount"], a["lotId"], a["grams"])
        self._lot_history(ev, a["lotId"])

    def on_SettlementProgress(self, ev: Event) -> None:
        a = ev.args
        self.orders.update(
            a["orderId"],
            settle_cursor=a["cursor"],
            lot_count=a["lotCount"],
            paid_to_farmers=a["paidToFarmers"],
            updated_block=ev.block_number,
        )

    # ------------------------------------------------------------------ LogisticsMarket

    def on_JobPosted(self, ev: Event) -> None:
        a = ev.args
        jid = a["jobId"]
        self.jobs.new(
            jid,
            {
                "job_id": jid,
                "consignment_id": a["consignmentId"],
                "order_id": _i64(a["orderId"]),
                "cooperative": a["cooperative"],
                "pickup_geohash": a["pickupGeohash"],
                "dropoff_geohash": a["dropoffGeohash"],
                "deadline": _i64(a["deadline"]),
                "max_fee": a["maxFee"],
                "status": JobStatus.OPEN,
                "created_block": ev.block_number,
                "updated_block": ev.block_number,
            },
        )

    def on_BidPlaced(self, ev: Event) -> None:
        a = ev.args
        bid = a["bidId"]
        self.bids.new(
            bid,
            {
                "bid_id": bid,
                "job_id": a["jobId"],
                "carrier": a["carrier"],
                "fee": a["fee"],
                "eta": _i64(a["eta"]),
                "status": "active",
                "created_block": ev.block_number,
                "updated_block": ev.block_number,
            },
        )

    def on_BidWithdrawn(self, ev: Event) -> None:
        self.bids.update(ev.args["bidId"], status="withdrawn", updated_block=ev.block_number)

    def on_JobAwarded(self, ev: Event) -> None:
        a = ev.args
        self.jobs.update(
            a["jobId"],
            status=JobStatus.AWARDED,
            carrier=a["carrier"],
            accepted_bid_id=a["bidId"],
            fee=a["fee"],
            updated_block=ev.block_number,
        )
        self.bids.update(a["bidId"], status="accepted", updated_block=ev.block_number)

    def on_JobPickedUp(self, ev: Event) -> None:
        a = ev.args
        self.jobs.update(
            a["jobId"],
            status=JobStatus.IN_TRANSIT,
            picked_up_at=_i64(a["pickedUpAt"]),
            updated_block=ev.block_number,
        )

    def on_JobDelivered(self, ev: Event) -> None:
        a = ev.args
        self.jobs.update(
            a["jobId"],
            status=JobStatus.DELIVERED,
            receiver=a["receiver"],
            delivered_at=_i64(a["deliveredAt"]),
            on_time=a["onTime"],
            updated_block=ev.block_number,
        )

    def on_JobCancelled(self, ev: Event) -> None:
        self.jobs.update(
            ev.args["jobId"], status=JobStatus.CANCELLED, updated_block=ev.block_number
        )

    def on_JobExpired(self, ev: Event) -> None:
        self.jobs.update(ev.args["jobId"], status=JobStatus.EXPIRED, updated_block=ev.block_number)

    # ------------------------------------------------------------------ FinanceMarket

    def on_LtvSet(self, ev: Event) -> None:
        self._setting(ev, "ltvBps", str(ev.args["ltvBps"]))

    def on_AdvanceRequested(self, ev: Event) -> None:
        a = ev.args
        rid = a["requestId"]
        self.advances.new(
            rid,
            {
                "advance_id": rid,
                "order_id": a["orderId"],
                "cooperative": a["cooperative"],
                "token": a["token"],
                "requested_amount": a["amount"],
                "max_amount": a["maxAmount"],
                "status": AdvanceStatus.REQUEST_OPEN,
                "created_block": ev.block_number,
                "updated_block": ev.block_number,
            },
        )

    def on_AdvanceRequestCancelled(self, ev: Event) -> None:
        self.advances.update(
            ev.args["requestId"],
            status=AdvanceStatus.REQUEST_CANCELLED,
            updated_block=ev.block_number,
        )

    def on_OfferMade(self, ev: Event) -> None:
        a = ev.args
        oid = a["offerId"]
        self.offers.new(
            oid,
            {
                "offer_id": oid,
                "request_id": a["requestId"],
                "financier": a["financier"],
                "order_id": a["orderId"],
                "amount": a["amount"],
                "fee": a["fee"],
                "expiry": _i64(a["expiry"]),
                "status": OfferStatus.OPEN,
                "created_block": ev.block_number,
                "updated_block": ev.block_number,
            },
        )

    def on_OfferWithdrawn(self, ev: Event) -> None:
        self.offers.update(
            ev.args["offerId"], status=OfferStatus.WITHDRAWN, updated_block=ev.block_number
        )

    def on_AdvanceDisbursed(self, ev: Event) -> None:
        a = ev.args
        self.advances.update(
            a["advanceId"],
            status=AdvanceStatus.ACTIVE,
            offer_id=a["offerId"],
            financier=a["financier"],
            amount=a["amount"],
            fee=a["fee"],
            due=a["due"],
            updated_block=ev.block_number,
        )
        self.offers.update(a["offerId"], status=OfferStatus.ACCEPTED, updated_block=ev.block_number)

    def _closing(self, ev: Event) -> dict[str, Any]:
        a = ev.args
        return {
            "block_number": ev.block_number,
            "log_index": ev.log_index,
            "tx_hash": ev.tx_hash,
            "advance_id": a["advanceId"],
            "order_id": a["orderId"],
            "cooperative": a["cooperative"],
            "financier": a["financier"],
            "repaid": a["repaid"],
        }

    def on_AdvanceRepaid(self, ev: Event) -> None:
        a = ev.args
        self.advances.update(
            a["advanceId"],
            status=AdvanceStatus.REPAID,
            repaid=a["repaid"],
            updated_block=ev.block_number,
        )
        self.repayments.add(self._closing(ev))

    def on_AdvanceDefaulted(self, ev: Event) -> None:
        a = ev.args
        self.advances.update(
            a["advanceId"],
            status=AdvanceStatus.DEFAULTED,
            repaid=a["repaid"],
            updated_block=ev.block_number,
        )
        self.defaults.add({**self._closing(ev), "due": a["due"]})

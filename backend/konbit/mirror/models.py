"""Mirror tables: raw chain events, recent block headers, the cursor, and the projection.

The projection tables are derived from ``chain_event`` alone (principle 2): request
handlers never write them, and ``konbit mirror --rebuild`` drops and replays them. One
database mirrors one chain, so projection keys are the on-chain ids. Addresses are
checksummed; hashes and fixed bytes are 0x-hex; token amounts and grams use ``Uint``
(exact up to 256 bits, see ``konbit.mirror.types``); block numbers, times and ids are
BIGINT. Status columns hold the contracts' own numeric codes (see the enums below).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum

from sqlalchemy import BigInteger, Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from konbit.mirror.types import Uint


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------- status codes


class LotStatus(IntEnum):
    ACTIVE = 1
    SPLIT = 2
    REJECTED = 3


class InspectionResult(IntEnum):
    NONE = 0
    PASSED = 1
    FAILED = 2


class ConsignmentStatus(IntEnum):
    OPEN = 1
    SHIPPED = 2
    DELIVERED = 3
    CLOSED = 4
    CANCELLED = 5


class OrderStatus(IntEnum):
    PROPOSED = 1
    ACCEPTED = 2
    FUNDED = 3
    SHIPPED = 4
    DELIVERED = 5
    DISPUTED = 6
    RESOLVED = 7
    SETTLING = 8
    SETTLED = 9
    REFUNDED = 10
    CANCELLED = 11


class JobStatus(IntEnum):
    OPEN = 1
    AWARDED = 2
    IN_TRANSIT = 3
    DELIVERED = 4
    CANCELLED = 5
    EXPIRED = 6


class AdvanceStatus(IntEnum):
    REQUEST_OPEN = 1
    REQUEST_CANCELLED = 2
    ACTIVE = 3
    REPAID = 4
    DEFAULTED = 5


class OfferStatus(IntEnum):
    OPEN = 1
    WITHDRAWN = 2
    ACCEPTED = 3


class ReleaseState(IntEnum):
    """An order's release agent (SaleEscrow AGENT_*)."""

    NONE = 0
    PROPOSED = 1
    AGREED = 2
    PRESENTED = 3
    RELEASED = 4
    REFUSED = 5
    LAPSED = 6


#: WaterfallPaid kinds (SaleEscrow PAY_*), by code.
PAYOUT_KINDS = {
    1: "exporter_refund",
    2: "financier",
    3: "carrier",
    4: "cooperative_fee",
    5: "cooperative_residual",
    6: "funder_refund",
}

# ---------------------------------------------------------------------- raw and bookkeeping


class ChainEvent(SQLModel, table=True):
    """Every Konbit log, decoded; the projection is a function of these rows alone."""

    __tablename__ = "chain_event"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index", name="uq_chain_event_log"),
        Index("ix_chain_event_order", "chain_id", "block_number", "log_index"),
    )

    id: int | None = Field(
        default=None, primary_key=True, sa_type=BigInteger().with_variant(Integer(), "sqlite")
    )
    chain_id: int = Field(sa_type=BigInteger)
    block_number: int = Field(sa_type=BigInteger)
    block_hash: str = Field(max_length=66)
    block_time: int | None = Field(default=None, sa_type=BigInteger)
    tx_hash: str = Field(max_length=66)
    tx_index: int
    log_index: int
    address: str = Field(max_length=42)
    contract: str = Field(max_length=64)
    event: str = Field(max_length=64)
    args: str = Field(sa_type=Text, description="JSON object; ints exact")


class BlockHeader(SQLModel, table=True):
    """Hashes of recent blocks the mirror applied, to find the fork point of a reorg."""

    __tablename__ = "block_header"

    chain_id: int = Field(primary_key=True, sa_type=BigInteger)
    number: int = Field(primary_key=True, sa_type=BigInteger)
    hash: str = Field(max_length=66)
    parent_hash: str | None = Field(default=None, max_length=66)
    timestamp: int | None = Field(default=None, sa_type=BigInteger)


class MirrorCursor(SQLModel, table=True):
    """How far the projection goes, and which chain instance and deployment it follows."""

    __tablename__ = "mirror_cursor"

    chain_id: int = Field(primary_key=True, sa_type=BigInteger)
    last_block: int = Field(sa_type=BigInteger, description="last block fully applied")
    genesis_hash: str = Field(max_length=66)
    deploy_block: int = Field(sa_type=BigInteger)
    contracts: str = Field(sa_type=Text, description="JSON {name: address} followed")
    updated_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------------- registry


class Organisation(SQLModel, table=True):
    """An onboarded organisation (OrganisationRegistered / OrganisationMetadataUpdated)."""

    __tablename__ = "organisation"

    address: str = Field(primary_key=True, max_length=42)
    metadata_hash: str = Field(max_length=66)
    registered_by: str = Field(max_length=42)
    created_block: int = Field(sa_type=BigInteger)
    updated_block: int = Field(sa_type=BigInteger)


class RoleGrant(SQLModel, table=True):
    """Registry roles (RoleGranted / RoleRevoked), including system contracts' roles."""

    __tablename__ = "role_grant"

    role: str = Field(primary_key=True, max_length=66)
    account: str = Field(primary_key=True, max_length=42, index=True)
    role_name: str = Field(max_length=40)
    active: bool
    sender: str = Field(max_length=42)
    updated_block: int = Field(sa_type=BigInteger)


class Farmer(SQLModel, table=True):
    """The on-chain part of a farmer: address, cooperative, active flag."""

    __tablename__ = "farmer"

    address: str = Field(primary_key=True, max_length=42)
    cooperative: str = Field(max_length=42, index=True)
    active: bool
    created_block: int = Field(sa_type=BigInteger)
    updated_block: int = Field(sa_type=BigInteger)


# ---------------------------------------------------------------------- traceability


class Lot(SQLModel, table=True):
    """A harvest lot, with its current state (status, grade, inspection, consignment)."""

    __tablename__ = "lot"

    lot_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    farmer: str = Field(max_length=42, index=True)
    cooperative: str = Field(max_length=42, index=True)
    crop: int
    grams: int = Field(sa_type=Uint)
    grade: int
    harvest_time: int = Field(sa_type=BigInteger)
    plot_geohash: str = Field(max_length=26, description="the plot's area: <= 5 characters")
    plot_commitment: str = Field(
        default="0x" + "00" * 32, max_length=66, description="keccak(salt, exact plot)"
    )
    evidence_hash: str = Field(max_length=66)
    status: int = Field(description="LotStatus")
    inspection: int = Field(description="InspectionResult")
    parent_lot_id: int | None = Field(default=None, sa_type=BigInteger)
    consignment_id: int | None = Field(
        default=None, sa_type=BigInteger, index=True, description="last consignment joined"
    )
    paid_amount: int = Field(default=0, sa_type=Uint, description="farmer payouts for the lot")
    created_block: int = Field(sa_type=BigInteger)
    updated_block: int = Field(sa_type=BigInteger)


class LotEvent(SQLModel, table=True):
    """A lot's history: one row per event that touched it.

    The event's arguments and transaction are in ``chain_event`` (same block number and
    log index): join it rather than copy them.
    """

    __tablename__ = "lot_event"

    lot_id: int = Field(primary_key=True, sa_type=BigInteger)
    block_number: int = Field(primary_key=True, sa_type=BigInteger)
    log_index: int = Field(primary_key=True)
    kind: str = Field(max_length=40, description="event name")


class LotSplitRow(SQLModel, table=True):
    """A split: parent lot -> child lot with its grams."""

    __tablename__ = "lot_split"

    parent_lot_id: int = Field(primary_key=True, sa_type=BigInteger)
    child_lot_id: int = Field(primary_key=True, sa_type=BigInteger)
    grams: int = Field(sa_type=Uint)
    block_number: int = Field(sa_type=BigInteger)


class Consignment(SQLModel, table=True):
    """Lots aggregated for one order, with status, totals and custody."""

    __tablename__ = "consignment"

    consignment_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    cooperative: str = Field(max_length=42, index=True)
    order_id: int = Field(sa_type=BigInteger, index=True)
    min_grade: int
    status: int = Field(description="ConsignmentStatus")
    lot_count: int
    total_grams: int = Field(sa_type=Uint)
    eligible_grams: int = Field(sa_type=Uint)
    custodian: str = Field(max_length=42)
    previous_custodian: str | None = Field(default=None, max_length=42)
    pending_custodian: str | None = Field(default=None, max_length=42)
    custody_since: int | None = Field(default=None, sa_type=BigInteger, description="block time")
    created_block: int = Field(sa_type=BigInteger)
    updated_block: int = Field(sa_type=BigInteger)


class ConsignmentLot(SQLModel, table=True):
    """Membership of a lot in a consignment (removed lots are deleted)."""

    __tablename__ = "consignment_lot"

    consignment_id: int = Field(primary_key=True, sa_type=BigInteger)
    lot_id: int = Field(primary_key=True, sa_type=BigInteger, index=True)
    grams: int = Field(sa_type=Uint)
    added_block: int = Field(sa_type=BigInteger)


class Inspection(SQLModel, table=True):
    """An inspection result on a lot (lot_id set) or a whole consignment (lot_id null)."""

    __tablename__ = "inspection"

    block_number: int = Field(primary_key=True, sa_type=BigInteger)
    log_index: int = Field(primary_key=True)
    tx_hash: str = Field(max_length=66)
    lot_id: int | None = Field(default=None, sa_type=BigInteger, index=True)
    consignment_id: int | None = Field(default=None, sa_type=BigInteger, index=True)
    inspector: str = Field(max_length=42)
    passed: bool
    grade: int
    certificate_hash: str = Field(max_length=66)
    eligible_grams: int | None = Field(default=None, sa_type=Uint)


class CustodyTransfer(SQLModel, table=True):
    """A hand-over offer or a confirmed receipt of a consignment."""

    __tablename__ = "custody_transfer"

    block_number: int = Field(primary_key=True, sa_type=BigInteger)
    log_index: int = Field(primary_key=True)
    tx_hash: str = Field(max_length=66)
    consignment_id: int = Field(sa_type=BigInteger, index=True)
    kind: str = Field(max_length=16, description="handover | receipt")
    from_address: str = Field(max_length=42)
    to_address: str = Field(max_length=42)
    at: int = Field(sa_type=BigInteger, description="time recorded at the scene")
    geohash: str = Field(max_length=26)
    evidence_hash: str = Field(max_length=66)
    block_time: int | None = Field(default=None, sa_type=BigInteger)


# ---------------------------------------------------------------------- sale escrow


class SaleOrder(SQLModel, table=True):
    """A purchase order: terms, status, delivery, dispute and settlement progress."""

    __tablename__ = "sale_order"

    order_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    exporter: str = Field(max_length=42, index=True)
    cooperative: str = Field(max_length=42, index=True)
    token: str = Field(max_length=42)
    crop: int
    grams: int = Field(sa_type=Uint)
    price_per_kg: int = Field(sa_type=Uint)
    min_grade: int
    delivery_deadline: int = Field(sa_type=BigInteger)
    coop_fee_bps: int
    deposit: int = Field(sa_type=Uint)
    status: int = Field(description="OrderStatus")
    consignment_id: int | None = Field(default=None, sa_type=BigInteger)
    accepted_grams: int | None = Field(default=None, sa_type=Uint)
    eligible_grams: int | None = Field(default=None, sa_type=Uint)
    payment: int | None = Field(default=None, sa_type=Uint)
    dispute_until: int | None = Field(default=None, sa_type=BigInteger)
    rejected_lots: str | None = Field(default=None, sa_type=Text, description="JSON list")
    disputed_by: str | None = Field(default=None, max_length=42)
    dispute_reason_hash: str | None = Field(default=None, max_length=66)
    arbiter: str | None = Field(default=None, max_length=42)
    ruling_hash: str | None = Field(default=None, max_length=66)
    farmer_pool: int | None = Field(default=None, sa_type=Uint)
    paid_to_farmers: int | None = Field(default=None, sa_type=Uint)
    settle_cursor: int | None = None
    lot_count: int | None = None
    carrier: str | None = Field(default=None, max_length=42)
    carrier_job_id: int | None = Field(default=None, sa_type=BigInteger)
    carrier_fee: int | None = Field(default=None, sa_type=Uint)
    funder: str | None = Field(
        default=None, max_length=42, description="who funded the deposit; refunds go to it"
    )
    funding_financier: str | None = Field(
        default=None, max_length=42, description="financier the exporter named to fund the order"
    )
    funding_agreement_hash: str | None = Field(
        default=None, max_length=66, description="hash of the exporter's agreement with it"
    )
    release_agent: str | None = Field(default=None, max_length=42, index=True)
    agent_window: int | None = Field(
        default=None, description="seconds after the dispute window the agent has to act"
    )
    agent_proposed_by: str | None = Field(default=None, max_length=42)
    release_state: int = Field(default=0, description="ReleaseState")
    agent_deadline: int | None = Field(
        default=None, sa_type=BigInteger, description="after it anyone may settle"
    )
    documents_hash: str | None = Field(
        default=None, max_length=66, description="keccak256 of the presented document hashes"
    )
    document_hashes: str | None = Field(default=None, sa_type=Text, description="JSON list")
    documents_presented_by: str | None = Field(default=None, max_length=42)
    release_waived: bool | None = Field(
        default=None, description="the agent released with the dispute window waived"
    )
    release_reason_hash: str | None = Field(default=None, max_length=66)
    created_block: int = Field(sa_type=BigInteger)
    updated_block: int = Field(sa_type=BigInteger)


class OrderStatusChange(SQLModel, table=True):
    """An order's history of statuses."""

    __tablename__ = "order_status_change"

    block_number: int = Field(primary_key=True, sa_type=BigInteger)
    log_index: int = Field(primary_key=True)
    tx_hash: str = Field(max_length=66)
    order_id: int = Field(sa_type=BigInteger, index=True)
    status: int
    actor: str = Field(max_length=42)


class EscrowMovement(SQLModel, table=True):
    """Every token movement into (deposit) or out of (refund, payouts) the escrow."""

    __tablename__ = "escrow_movement"

    block_number: int = Field(primary_key=True, sa_type=BigInteger)
    log_index: int = Field(primary_key=True)
    tx_hash: str = Field(max_length=66)
    order_id: int = Field(sa_type=BigInteger, index=True)
    token: str = Field(max_length=42)
    direction: str = Field(max_length=3, description="in | out")
    kind: str = Field(max_length=24, description="deposit, refund or a payout kind")
    counterparty: str = Field(max_length=42)
    amount: int = Field(sa_type=Uint)


class Payout(SQLModel, table=True):
    """A settlement payment: a waterfall part or a farmer's share for one lot."""

    __tablename__ = "payout"

    block_number: int = Field(primary_key=True, sa_type=BigInteger)
    log_index: int = Field(primary_key=True)
    tx_hash: str = Field(max_length=66)
    order_id: int = Field(sa_type=BigInteger, index=True)
    payee: str = Field(max_length=42, index=True)
    kind: str = Field(max_length=24, description="farmer or a waterfall kind")
    lot_id: int | None = Field(default=None, sa_type=BigInteger)
    grams: int | None = Field(default=None, sa_type=Uint)
    amount: int = Field(sa_type=Uint)


class Lien(SQLModel, table=True):
    """A financier's lien on an order, and how it was settled."""

    __tablename__ = "lien"

    order_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    advance_id: int = Field(sa_type=BigInteger)
    financier: str = Field(max_length=42)
    market: str = Field(max_length=42)
    amount_due: int = Field(sa_type=Uint)
    repaid: int | None = Field(default=None, sa_type=Uint)
    defaulted: bool | None = None
    created_block: int = Field(sa_type=BigInteger)
    settled_block: int | None = Field(default=None, sa_type=BigInteger)


# ---------------------------------------------------------------------- logistics


class TransportJob(SQLModel, table=True):
    """A transport job for a consignment, its award, pickup and delivery."""

    __tablename__ = "transport_job"

    job_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    consignment_id: int = Field(sa_type=BigInteger, index=True)
    order_id: int = Field(sa_type=BigInteger)
    cooperative: str = Field(max_length=42, index=True)
    pickup_geohash: str = Field(max_length=26)
    dropoff_geohash: str = Field(max_length=26)
    deadline: int = Field(sa_type=BigInteger)
    max_fee: int = Field(sa_type=Uint)
    status: int = Field(description="JobStatus")
    carrier: str | None = Field(default=None, max_length=42, index=True)
    accepted_bid_id: int | None = Field(default=None, sa_type=BigInteger)
    fee: int | None = Field(default=None, sa_type=Uint)
    picked_up_at: int | None = Field(default=None, sa_type=BigInteger)
    receiver: str | None = Field(default=None, max_length=42)
    delivered_at: int | None = Field(default=None, sa_type=BigInteger)
    on_time: bool | None = None
    created_block: int = Field(sa_type=BigInteger)
    updated_block: int = Field(sa_type=BigInteger)


class TransportBid(SQLModel, table=True):
    """A carrier's bid on a job."""

    __tablename__ = "transport_bid"

    bid_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    job_id: int = Field(sa_type=BigInteger, index=True)
    carrier: str = Field(max_length=42)
    fee: int = Field(sa_type=Uint)
    eta: int = Field(sa_type=BigInteger)
    status: str = Field(max_length=10, description="active | withdrawn | accepted")
    created_block: int = Field(sa_type=BigInteger)
    updated_block: int = Field(sa_type=BigInteger)


# ---------------------------------------------------------------------- finance


class Advance(SQLModel, table=True):
    """An advance request; once an offer is accepted, the advance (same id)."""

    __tablename__ = "advance"

    advance_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    order_id: int = Field(sa_type=BigInteger, index=True)
    cooperative: str = Field(max_length=42, index=True)
    token: str = Field(max_length=42)
    requested_amount: int = Field(sa_type=Uint)
    max_amount: int = Field(sa_type=Uint)
    status: int = Field(description="AdvanceStatus")
    offer_id: int | None = Field(default=None, sa_type=BigInteger)
    financier: str | None = Field(default=None, max_length=42)
    amount: int | None = Field(default=None, sa_type=Uint)
    fee: int | None = Field(default=None, sa_type=Uint)
    due: int | None = Field(default=None, sa_type=Uint)
    repaid: int | None = Field(default=None, sa_type=Uint)
    created_block: int = Field(sa_type=BigInteger)
    updated_block: int = Field(sa_type=BigInteger)


class AdvanceOffer(SQLModel, table=True):
    """A financier's offer on an advance request."""

    __tablename__ = "advance_offer"

    offer_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    request_id: int = Field(sa_type=BigInteger, index=True)
    financier: str = Field(max_length=42)
    order_id: int = Field(sa_type=BigInteger)
    amount: int = Field(sa_type=Uint)
    fee: int = Field(sa_type=Uint)
    expiry: int = Field(sa_type=BigInteger)
    status: int = Field(description="OfferStatus")
    created_block: int = Field(sa_type=BigInteger)
    updated_block: int = Field(sa_type=BigInteger)


class AdvanceRepayment(SQLModel, table=True):
    """An advance repaid in full from the escrow (AdvanceRepaid)."""

    __tablename__ = "advance_repayment"

    block_number: int = Field(primary_key=True, sa_type=BigInteger)
    log_index: int = Field(primary_key=True)
    tx_hash: str = Field(max_length=66)
    advance_id: int = Field(sa_type=BigInteger, index=True)
    order_id: int = Field(sa_type=BigInteger)
    cooperative: str = Field(max_length=42, index=True)
    financier: str = Field(max_length=42)
    repaid: int = Field(sa_type=Uint)


class AdvanceDefault(SQLModel, table=True):
    """An advance that defaulted: refund, or a payment short of the lien (AdvanceDefaulted)."""

    __tablename__ = "advance_default"

    block_number: int = Field(primary_key=True, sa_type=BigInteger)
    log_index: int = Field(primary_key=True)
    tx_hash: str = Field(max_length=66)
    advance_id: int = Field(sa_type=BigInteger, index=True)
    order_id: int = Field(sa_type=BigInteger)
    cooperative: str = Field(max_length=42, index=True)
    financier: str = Field(max_length=42)
    repaid: int = Field(sa_type=Uint)
    due: int = Field(sa_type=Uint)


class ContractSetting(SQLModel, table=True):
    """Admin settings: allowed tokens, dispute window, loan-to-value cap."""

    __tablename__ = "contract_setting"

    contract: str = Field(primary_key=True, max_length=64)
    name: str = Field(primary_key=True, max_length=80)
    value: str = Field(max_length=80)
    updated_block: int = Field(sa_type=BigInteger)


#: Every projection table, in a stable order (rebuild drops and refills exactly these).
PROJECTION_MODELS: tuple[type[SQLModel], ...] = (
    Organisation,
    RoleGrant,
    Farmer,
    Lot,
    LotEvent,
    LotSplitRow,
    Consignment,
    ConsignmentLot,
    Inspection,
    CustodyTransfer,
    SaleOrder,
    OrderStatusChange,
    EscrowMovement,
    Payout,
    Lien,
    TransportJob,
    TransportBid,
    Advance,
    AdvanceOffer,
    AdvanceRepayment,
    AdvanceDefault,
    ContractSetting,
)

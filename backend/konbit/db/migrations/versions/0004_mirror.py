"""mirror: raw chain events, block headers, cursor, the projection, private profiles

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Projection tables are derived from ``chain_event`` only; ``farmer_profile`` and
``organisation_profile`` hold private off-chain data the mirror never writes.
Token amounts and grams use ``Uint`` (NUMERIC(78,0) on PostgreSQL, decimal text on SQLite).
"""

import sqlalchemy as sa
from alembic import op

from konbit.mirror.types import Uint

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_time", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("contract", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.UniqueConstraint("chain_id", "tx_hash", "log_index", name="uq_chain_event_log"),
    )
    op.create_index(
        "ix_chain_event_order", "chain_event", ["chain_id", "block_number", "log_index"]
    )
    op.create_table(
        "block_header",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("parent_hash", sa.String(length=66), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("chain_id", "number"),
    )
    op.create_table(
        "mirror_cursor",
        sa.Column("chain_id", sa.BigInteger(), primary_key=True),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("genesis_hash", sa.String(length=66), nullable=False),
        sa.Column("deploy_block", sa.BigInteger(), nullable=False),
        sa.Column("contracts", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "organisation",
        sa.Column("address", sa.String(length=42), primary_key=True),
        sa.Column("metadata_hash", sa.String(length=66), nullable=False),
        sa.Column("registered_by", sa.String(length=42), nullable=False),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "role_grant",
        sa.Column("role", sa.String(length=66), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("role_name", sa.String(length=40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("role", "account"),
    )
    op.create_index("ix_role_grant_account", "role_grant", ["account"])
    op.create_table(
        "farmer",
        sa.Column("address", sa.String(length=42), primary_key=True),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_farmer_cooperative", "farmer", ["cooperative"])
    op.create_table(
        "lot",
        sa.Column("lot_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("farmer", sa.String(length=42), nullable=False),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("crop", sa.Integer(), nullable=False),
        sa.Column("grams", Uint(), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("harvest_time", sa.BigInteger(), nullable=False),
        sa.Column("plot_geohash", sa.String(length=26), nullable=False),
        sa.Column("evidence_hash", sa.String(length=66), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("inspection", sa.Integer(), nullable=False),
        sa.Column("parent_lot_id", sa.BigInteger(), nullable=True),
        sa.Column("consignment_id", sa.BigInteger(), nullable=True),
        sa.Column("paid_amount", Uint(), nullable=False),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_lot_consignment_id", "lot", ["consignment_id"])
    op.create_index("ix_lot_cooperative", "lot", ["cooperative"])
    op.create_index("ix_lot_farmer", "lot", ["farmer"])
    op.create_table(
        "lot_event",
        sa.Column("lot_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("lot_id", "block_number", "log_index"),
    )
    op.create_table(
        "lot_split",
        sa.Column("parent_lot_id", sa.BigInteger(), nullable=False),
        sa.Column("child_lot_id", sa.BigInteger(), nullable=False),
        sa.Column("grams", Uint(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("parent_lot_id", "child_lot_id"),
    )
    op.create_table(
        "consignment",
        sa.Column("consignment_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("min_grade", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("lot_count", sa.Integer(), nullable=False),
        sa.Column("total_grams", Uint(), nullable=False),
        sa.Column("eligible_grams", Uint(), nullable=False),
        sa.Column("custodian", sa.String(length=42), nullable=False),
        sa.Column("previous_custodian", sa.String(length=42), nullable=True),
        sa.Column("pending_custodian", sa.String(length=42), nullable=True),
        sa.Column("custody_since", sa.BigInteger(), nullable=True),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_consignment_cooperative", "consignment", ["cooperative"])
    op.create_index("ix_consignment_order_id", "consignment", ["order_id"])
    op.create_table(
        "consignment_lot",
        sa.Column("consignment_id", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", sa.BigInteger(), nullable=False),
        sa.Column("grams", Uint(), nullable=False),
        sa.Column("added_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("consignment_id", "lot_id"),
    )
    op.create_index("ix_consignment_lot_lot_id", "consignment_lot", ["lot_id"])
    op.create_table(
        "inspection",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("lot_id", sa.BigInteger(), nullable=True),
        sa.Column("consignment_id", sa.BigInteger(), nullable=True),
        sa.Column("inspector", sa.String(length=42), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("certificate_hash", sa.String(length=66), nullable=False),
        sa.Column("eligible_grams", Uint(), nullable=True),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
    )
    op.create_index("ix_inspection_consignment_id", "inspection", ["consignment_id"])
    op.create_index("ix_inspection_lot_id", "inspection", ["lot_id"])
    op.create_table(
        "custody_transfer",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("consignment_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_address", sa.String(length=42), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("geohash", sa.String(length=26), nullable=False),
        sa.Column("evidence_hash", sa.String(length=66), nullable=False),
        sa.Column("block_time", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
    )
    op.create_index("ix_custody_transfer_consignment_id", "custody_transfer", ["consignment_id"])
    op.create_table(
        "sale_order",
        sa.Column("order_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("exporter", sa.String(length=42), nullable=False),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("crop", sa.Integer(), nullable=False),
        sa.Column("grams", Uint(), nullable=False),
        sa.Column("price_per_kg", Uint(), nullable=False),
        sa.Column("min_grade", sa.Integer(), nullable=False),
        sa.Column("delivery_deadline", sa.BigInteger(), nullable=False),
        sa.Column("coop_fee_bps", sa.Integer(), nullable=False),
        sa.Column("deposit", Uint(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("consignment_id", sa.BigInteger(), nullable=True),
        sa.Column("accepted_grams", Uint(), nullable=True),
        sa.Column("eligible_grams", Uint(), nullable=True),
        sa.Column("payment", Uint(), nullable=True),
        sa.Column("dispute_until", sa.BigInteger(), nullable=True),
        sa.Column("rejected_lots", sa.Text(), nullable=True),
        sa.Column("disputed_by", sa.String(length=42), nullable=True),
        sa.Column("dispute_reason_hash", sa.String(length=66), nullable=True),
        sa.Column("arbiter", sa.String(length=42), nullable=True),
        sa.Column("ruling_hash", sa.String(length=66), nullable=True),
        sa.Column("farmer_pool", Uint(), nullable=True),
        sa.Column("paid_to_farmers", Uint(), nullable=True),
        sa.Column("settle_cursor", sa.Integer(), nullable=True),
        sa.Column("lot_count", sa.Integer(), nullable=True),
        sa.Column("carrier", sa.String(length=42), nullable=True),
        sa.Column("carrier_job_id", sa.BigInteger(), nullable=True),
        sa.Column("carrier_fee", Uint(), nullable=True),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_sale_order_cooperative", "sale_order", ["cooperative"])
    op.create_index("ix_sale_order_exporter", "sale_order", ["exporter"])
    op.create_table(
        "order_status_change",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=42), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
    )
    op.create_index("ix_order_status_change_order_id", "order_status_change", ["order_id"])
    op.create_table(
        "escrow_movement",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("counterparty", sa.String(length=42), nullable=False),
        sa.Column("amount", Uint(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
    )
    op.create_index("ix_escrow_movement_order_id", "escrow_movement", ["order_id"])
    op.create_table(
        "payout",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("payee", sa.String(length=42), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("lot_id", sa.BigInteger(), nullable=True),
        sa.Column("grams", Uint(), nullable=True),
        sa.Column("amount", Uint(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
    )
    op.create_index("ix_payout_order_id", "payout", ["order_id"])
    op.create_index("ix_payout_payee", "payout", ["payee"])
    op.create_table(
        "lien",
        sa.Column("order_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("advance_id", sa.BigInteger(), nullable=False),
        sa.Column("financier", sa.String(length=42), nullable=False),
        sa.Column("market", sa.String(length=42), nullable=False),
        sa.Column("amount_due", Uint(), nullable=False),
        sa.Column("repaid", Uint(), nullable=True),
        sa.Column("defaulted", sa.Boolean(), nullable=True),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("settled_block", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "transport_job",
        sa.Column("job_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("consignment_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("pickup_geohash", sa.String(length=26), nullable=False),
        sa.Column("dropoff_geohash", sa.String(length=26), nullable=False),
        sa.Column("deadline", sa.BigInteger(), nullable=False),
        sa.Column("max_fee", Uint(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=42), nullable=True),
        sa.Column("accepted_bid_id", sa.BigInteger(), nullable=True),
        sa.Column("fee", Uint(), nullable=True),
        sa.Column("picked_up_at", sa.BigInteger(), nullable=True),
        sa.Column("receiver", sa.String(length=42), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_transport_job_carrier", "transport_job", ["carrier"])
    op.create_index("ix_transport_job_consignment_id", "transport_job", ["consignment_id"])
    op.create_index("ix_transport_job_cooperative", "transport_job", ["cooperative"])
    op.create_table(
        "transport_bid",
        sa.Column("bid_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("carrier", sa.String(length=42), nullable=False),
        sa.Column("fee", Uint(), nullable=False),
        sa.Column("eta", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_transport_bid_job_id", "transport_bid", ["job_id"])
    op.create_table(
        "advance",
        sa.Column("advance_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=False),
        sa.Column("requested_amount", Uint(), nullable=False),
        sa.Column("max_amount", Uint(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("offer_id", sa.BigInteger(), nullable=True),
        sa.Column("financier", sa.String(length=42), nullable=True),
        sa.Column("amount", Uint(), nullable=True),
        sa.Column("fee", Uint(), nullable=True),
        sa.Column("due", Uint(), nullable=True),
        sa.Column("repaid", Uint(), nullable=True),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_advance_cooperative", "advance", ["cooperative"])
    op.create_index("ix_advance_order_id", "advance", ["order_id"])
    op.create_table(
        "advance_offer",
        sa.Column("offer_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("financier", sa.String(length=42), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", Uint(), nullable=False),
        sa.Column("fee", Uint(), nullable=False),
        sa.Column("expiry", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_advance_offer_request_id", "advance_offer", ["request_id"])
    op.create_table(
        "advance_repayment",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("advance_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("financier", sa.String(length=42), nullable=False),
        sa.Column("repaid", Uint(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
    )
    op.create_index("ix_advance_repayment_advance_id", "advance_repayment", ["advance_id"])
    op.create_index("ix_advance_repayment_cooperative", "advance_repayment", ["cooperative"])
    op.create_table(
        "advance_default",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("advance_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("financier", sa.String(length=42), nullable=False),
        sa.Column("repaid", Uint(), nullable=False),
        sa.Column("due", Uint(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index"),
    )
    op.create_index("ix_advance_default_advance_id", "advance_default", ["advance_id"])
    op.create_index("ix_advance_default_cooperative", "advance_default", ["cooperative"])
    op.create_table(
        "contract_setting",
        sa.Column("contract", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("value", sa.String(length=80), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("contract", "name"),
    )
    op.create_table(
        "farmer_profile",
        sa.Column("address", sa.String(length=42), primary_key=True),
        sa.Column("cooperative", sa.String(length=42), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=True, unique=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("plot_geohash", sa.String(length=12), nullable=True),
        sa.Column("plot_polygon", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("phone", name="None"),
    )
    op.create_index("ix_farmer_profile_cooperative", "farmer_profile", ["cooperative"])
    op.create_table(
        "organisation_profile",
        sa.Column("address", sa.String(length=42), primary_key=True),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("contact", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("organisation_profile")
    op.drop_table("farmer_profile")
    op.drop_table("contract_setting")
    op.drop_table("advance_default")
    op.drop_table("advance_repayment")
    op.drop_table("advance_offer")
    op.drop_table("advance")
    op.drop_table("transport_bid")
    op.drop_table("transport_job")
    op.drop_table("lien")
    op.drop_table("payout")
    op.drop_table("escrow_movement")
    op.drop_table("order_status_change")
    op.drop_table("sale_order")
    op.drop_table("custody_transfer")
    op.drop_table("inspection")
    op.drop_table("consignment_lot")
    op.drop_table("consignment")
    op.drop_table("lot_split")
    op.drop_table("lot_event")
    op.drop_table("lot")
    op.drop_table("farmer")
    op.drop_table("role_grant")
    op.drop_table("organisation")
    op.drop_table("mirror_cursor")
    op.drop_table("block_header")
    op.drop_table("chain_event")

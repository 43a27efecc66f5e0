"""outbox: intended transactions and per-sender nonce state

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_tx",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False, unique=True),
        sa.Column("request_hash", sa.String(length=66), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("contract", sa.String(length=64), nullable=True),
        sa.Column("function", sa.String(length=100), nullable=True),
        sa.Column("args_json", sa.Text(), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("value_wei", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("gas_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_fee_per_gas", sa.BigInteger(), nullable=True),
        sa.Column("max_priority_fee_per_gas", sa.BigInteger(), nullable=True),
        sa.Column("raw_tx", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True, unique=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("contract_address", sa.String(length=42), nullable=True),
        sa.Column("error_name", sa.String(length=100), nullable=True),
        sa.Column("error_args_json", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("mined_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_outbox_tx_status", "outbox_tx", ["status"])
    op.create_index("ix_outbox_tx_sender_status", "outbox_tx", ["sender", "status"])
    op.create_table(
        "outbox_sender",
        sa.Column("sender", sa.String(length=42), primary_key=True),
        sa.Column("next_nonce", sa.BigInteger(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("outbox_sender")
    op.drop_index("ix_outbox_tx_sender_status", table_name="outbox_tx")
    op.drop_index("ix_outbox_tx_status", table_name="outbox_tx")
    op.drop_table("outbox_tx")

"""sms: farmers' gateway (agents, farmer codes, messages, USSD sessions, notices)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cooperative_agent",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("phone", sa.String(length=16), nullable=False, unique=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("pin_hash", sa.String(length=200), nullable=False),
        sa.Column("failed_pins", sa.Integer(), nullable=False),
        sa.Column("locked_at", _tz(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
    )
    op.create_index("ix_cooperative_agent_cooperative", "cooperative_agent", ["cooperative"])
    op.create_table(
        "farmer_code",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("address", sa.String(length=42), nullable=False, unique=True),
        sa.Column("created_at", _tz(), nullable=False),
    )
    op.create_table(
        "sms_inbound",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("provider_id", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=40), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("reply_key", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", _tz(), nullable=False),
        sa.UniqueConstraint("provider", "provider_id", name="uq_sms_inbound_provider"),
    )
    op.create_index("ix_sms_inbound_phone", "sms_inbound", ["phone"])
    op.create_table(
        "sms_outbound",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phone", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("encoding", sa.String(length=4), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=True),
        sa.Column("provider_id", sa.String(length=100), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _tz(), nullable=False),
        sa.Column("lease_until", _tz(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("notice_key", sa.String(length=120), nullable=True),
        sa.Column("inbound_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        sa.Column("sent_at", _tz(), nullable=True),
        sa.Column("delivered_at", _tz(), nullable=True),
    )
    op.create_index("ix_sms_outbound_phone", "sms_outbound", ["phone"])
    op.create_index("ix_sms_outbound_provider_id", "sms_outbound", ["provider_id"])
    op.create_index("ix_sms_outbound_due", "sms_outbound", ["status", "next_attempt_at"])
    op.create_table(
        "sms_notice",
        sa.Column("key", sa.String(length=120), primary_key=True),
        sa.Column("phone", sa.String(length=16), nullable=False),
        sa.Column("outbound_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _tz(), nullable=False),
    )
    op.create_table(
        "sms_cursor",
        sa.Column("name", sa.String(length=32), primary_key=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("updated_at", _tz(), nullable=False),
    )
    op.create_table(
        "sms_pending_lot",
        sa.Column("outbox_tx_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("phone", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("farmer_code", sa.String(length=12), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
    )
    op.create_table(
        "ussd_session",
        sa.Column("session_id", sa.String(length=100), primary_key=True),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("consumed", sa.Integer(), nullable=False),
        sa.Column("last_text", sa.Text(), nullable=True),
        sa.Column("last_reply", sa.Text(), nullable=True),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("updated_epoch", sa.Float(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
    )
    op.create_index("ix_ussd_session_phone", "ussd_session", ["phone", "updated_epoch"])


def downgrade() -> None:
    op.drop_index("ix_ussd_session_phone", table_name="ussd_session")
    op.drop_table("ussd_session")
    op.drop_table("sms_pending_lot")
    op.drop_table("sms_cursor")
    op.drop_table("sms_notice")
    op.drop_index("ix_sms_outbound_due", table_name="sms_outbound")
    op.drop_index("ix_sms_outbound_provider_id", table_name="sms_outbound")
    op.drop_index("ix_sms_outbound_phone", table_name="sms_outbound")
    op.drop_table("sms_outbound")
    op.drop_index("ix_sms_inbound_phone", table_name="sms_inbound")
    op.drop_table("sms_inbound")
    op.drop_table("farmer_code")
    op.drop_index("ix_cooperative_agent_cooperative", table_name="cooperative_agent")
    op.drop_table("cooperative_agent")

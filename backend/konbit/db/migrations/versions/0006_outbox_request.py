"""outbox: write requests claimed under their idempotency key

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_request",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scope", sa.String(length=42), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=66), nullable=False),
        sa.Column("answer_json", sa.Text(), nullable=False),
        sa.Column("tx_ids_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("scope", "key", name="uq_outbox_request_scope_key"),
    )


def downgrade() -> None:
    op.drop_table("outbox_request")

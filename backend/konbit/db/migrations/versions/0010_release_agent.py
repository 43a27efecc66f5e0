"""release agent and financier funding: who funded an order, the financier named to fund it,
the release agent, the documents presented to it and its decision

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = (
    ("funder", sa.String(length=42)),
    ("funding_financier", sa.String(length=42)),
    ("funding_agreement_hash", sa.String(length=66)),
    ("release_agent", sa.String(length=42)),
    ("agent_window", sa.Integer()),
    ("agent_proposed_by", sa.String(length=42)),
    ("agent_deadline", sa.BigInteger()),
    ("documents_hash", sa.String(length=66)),
    ("document_hashes", sa.Text()),
    ("documents_presented_by", sa.String(length=42)),
    ("release_waived", sa.Boolean()),
    ("release_reason_hash", sa.String(length=66)),
)


def upgrade() -> None:
    with op.batch_alter_table("sale_order") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
        batch.add_column(
            sa.Column("release_state", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_index("ix_sale_order_release_agent", "sale_order", ["release_agent"])


def downgrade() -> None:
    op.drop_index("ix_sale_order_release_agent", table_name="sale_order")
    with op.batch_alter_table("sale_order") as batch:
        batch.drop_column("release_state")
        for name, _kind in reversed(COLUMNS):
            batch.drop_column(name)

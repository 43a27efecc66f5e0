"""privacy: exact plots off chain (salted commitment on chain), disclosures, salted metadata

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ZERO_HASH = "0x" + "00" * 32


def upgrade() -> None:
    op.create_table(
        "lot_plot",
        sa.Column("commitment", sa.String(length=66), primary_key=True),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("plot_geohash", sa.String(length=12), nullable=False),
        sa.Column("salt", sa.String(length=66), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lot_plot_cooperative", "lot_plot", ["cooperative"])
    op.create_table(
        "plot_disclosure",
        sa.Column("lot_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("buyer", sa.String(length=42), primary_key=True),
        sa.Column("cooperative", sa.String(length=42), nullable=False),
        sa.Column("disclosed_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("organisation_profile") as batch:
        batch.add_column(sa.Column("metadata_salt", sa.String(length=66), nullable=True))
    with op.batch_alter_table("lot") as batch:
        batch.add_column(
            sa.Column(
                "plot_commitment", sa.String(length=66), nullable=False, server_default=ZERO_HASH
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("lot") as batch:
        batch.drop_column("plot_commitment")
    with op.batch_alter_table("organisation_profile") as batch:
        batch.drop_column("metadata_salt")
    op.drop_table("plot_disclosure")
    op.drop_index("ix_lot_plot_cooperative", table_name="lot_plot")
    op.drop_table("lot_plot")

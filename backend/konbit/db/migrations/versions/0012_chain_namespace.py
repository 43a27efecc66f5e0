"""chains: the chain instances (genesis hashes) a database holds state for; outbox rows and
sender nonces say which chain they are for

Rows recorded before are left without a chain (NULL): the first ``konbit run`` /
``konbit deploy`` gives them to the chain they were sent to (konbit.services.chains). A
transaction hash is unique per chain instance only: two fresh local chains get the same
signed bytes for the same deploy.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: SQLite's unique constraint on outbox_tx.tx_hash (0003) has no name: batch mode names it.
_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "chain_namespace",
        sa.Column("genesis_hash", sa.String(length=66), primary_key=True),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("bound_at", _tz(), nullable=False),
    )
    bind = op.get_bind()
    unique_tx_hash = (
        ["uq_outbox_tx_tx_hash"]
        if bind.dialect.name == "sqlite"
        else [
            str(u["name"])
            for u in sa.inspect(bind).get_unique_constraints("outbox_tx")
            if u["column_names"] == ["tx_hash"]
        ]
    )
    with op.batch_alter_table("outbox_tx", naming_convention=_NAMES) as batch:
        batch.add_column(sa.Column("chain_genesis", sa.String(length=66), nullable=True))
        for name in unique_tx_hash:
            batch.drop_constraint(name, type_="unique")
        batch.create_unique_constraint("uq_outbox_tx_chain_tx_hash", ["chain_genesis", "tx_hash"])
        batch.create_index("ix_outbox_tx_tx_hash", ["tx_hash"])
    with op.batch_alter_table("outbox_sender") as batch:
        batch.add_column(sa.Column("chain_genesis", sa.String(length=66), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_sender") as batch:
        batch.drop_column("chain_genesis")
    with op.batch_alter_table("outbox_tx") as batch:
        batch.drop_index("ix_outbox_tx_tx_hash")
        batch.drop_constraint("uq_outbox_tx_chain_tx_hash", type_="unique")
        batch.drop_column("chain_genesis")
        batch.create_unique_constraint("uq_outbox_tx_tx_hash", ["tx_hash"])
    op.drop_table("chain_namespace")

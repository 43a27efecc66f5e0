"""profiles: farmers' phones stored as typed become E.164, the form every channel looks up

Before the dashboard normalised what a person types (2026-11-30), it stored the phone as
typed (``3700 1234``, ``+509 3700-1234``), and the SMS gateway, which looks farmers up by
E.164, could not find them. Each such phone is read as the pages read it now (numbers
without a country code in ``KONBIT_SMS_DEFAULT_REGION``, Haiti by default) and written
back as E.164. Left as typed, with a warning naming the farmer's address (never the
number): a phone that is no number (``12``), and one whose E.164 form another farmer
already has (which of the two it is, only the cooperative knows).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

import logging
import os

import sqlalchemy as sa
from alembic import op

from konbit.profiles.phones import DEFAULT_REGION, try_normalise

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

log = logging.getLogger("konbit.db.migrations")

_farmers = sa.table(
    "farmer_profile", sa.column("address", sa.String()), sa.column("phone", sa.String())
)


def upgrade() -> None:
    region = os.environ.get("KONBIT_SMS_DEFAULT_REGION") or DEFAULT_REGION
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_farmers.c.address, _farmers.c.phone)
        .where(_farmers.c.phone.is_not(None))
        .order_by(_farmers.c.address)
    ).all()
    taken = {phone for _, phone in rows}
    for address, phone in rows:
        e164 = try_normalise(phone, region)
        if e164 == phone:
            continue
        if e164 is None:
            log.warning(
                "farmer %s: the phone on file is not a phone number; kept as typed (the SMS"
                " gateway cannot reach this farmer until it is corrected)",
                address,
            )
            continue
        if e164 in taken:
            log.warning(
                "farmer %s: the phone on file, written in full, is another farmer's; kept as"
                " typed (the cooperative knows whose it is)",
                address,
            )
            continue
        bind.execute(sa.update(_farmers).where(_farmers.c.address == address).values(phone=e164))
        taken.discard(phone)
        taken.add(e164)


def downgrade() -> None:
    pass  # E.164 is what every channel reads; the typed forms are not kept

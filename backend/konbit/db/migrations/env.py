"""Alembic environment: uses the connection handed over by konbit.db.migrate when given."""

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

from konbit.access import models as access_models  # noqa: F401  (registers its tables)
from konbit.db import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from konbit.mirror import models as mirror_models  # noqa: F401
from konbit.outbox import models as outbox_models  # noqa: F401
from konbit.profiles import agents as agent_models  # noqa: F401
from konbit.profiles import codes as code_models  # noqa: F401
from konbit.profiles import models as profile_models  # noqa: F401
from konbit.sms import models as sms_models  # noqa: F401
from konbit.vault import models as vault_models  # noqa: F401

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()

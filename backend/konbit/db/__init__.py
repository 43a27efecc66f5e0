"""SQL storage: engine and sessions, tables, Alembic migrations."""

"""Alembic migrations of the monitor's database, run by :func:`certdoctor.watch.store.open_store` (no alembic.ini)."""

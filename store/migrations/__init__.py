"""Alembic migrations of the hub database; store.database runs them (see env.py)."""

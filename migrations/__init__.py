"""Alembic migrations: the only source of the schema (see recovery/schema.py)."""

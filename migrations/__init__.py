"""Alembic migrations: the only source of the schema (see recovery/storage/schema.py)."""

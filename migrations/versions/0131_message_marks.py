"""a message's figures mark only when a figure can move, and once per change

Revision ID: 0131
Revises: 0130

0118's trigger on recovery_messages fired on every `status` change and wrote two marks (the row's old and new
cart) for each: a sent message left six (queued, sending, sent). No daily figure reads `status` (planned
counts rows, sent counts `sent_at`: recovery/measure/figures.py), so the trigger now fires on the columns the
figures read, and marks the old cart only when the row moved to another one. A sent message leaves one mark.
"""

from __future__ import annotations

from alembic import op

revision = "0131"
down_revision = "0130"
branch_labels = None
depends_on = None

#: What the daily figures read of a message (recovery/measure/figures.py `_funnel_query`), and its cart.
COLUMNS = ("cart_id", "sent_at", "opened_at", "clicked_at", "delivery_status", "step", "channel")
#: 0118's list, for the downgrade.
OLD_COLUMNS = ("status", "sent_at", "opened_at", "clicked_at", "delivery_status", "step", "channel")

MARK = (
    "INSERT INTO figure_marks (store_id, at) SELECT c.store_id, c.abandoned_at FROM carts c "
    "WHERE c.id = {row}.cart_id AND c.abandoned_at IS NOT NULL;"
)


def _pg(columns: tuple[str, ...], old_when: str) -> list[str]:
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)
    return [
        f"""
CREATE OR REPLACE FUNCTION figures_mark_recovery_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF {old_when} THEN {MARK.format(row="OLD")} END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN {MARK.format(row="NEW")} END IF;
  RETURN NULL;
END $$""",
        "DROP TRIGGER IF EXISTS figures_mark_upd ON recovery_messages",
        "CREATE TRIGGER figures_mark_upd AFTER UPDATE ON recovery_messages FOR EACH ROW "
        f"WHEN ({changed}) EXECUTE FUNCTION figures_mark_recovery_messages()",
    ]


def _sqlite(columns: tuple[str, ...], old_too: str) -> list[str]:
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
    old = MARK.format(row="OLD").replace("WHERE ", f"WHERE {old_too}" if old_too else "WHERE ")
    return [
        "DROP TRIGGER IF EXISTS figures_mark_recovery_messages_upd",
        f"CREATE TRIGGER figures_mark_recovery_messages_upd AFTER UPDATE ON recovery_messages WHEN {changed} "
        f"BEGIN {old} {MARK.format(row='NEW')} END",
    ]


def _run(columns: tuple[str, ...], pg_old_when: str, sqlite_old_too: str) -> None:
    """The trigger for `columns`, marking the old cart when `pg_old_when` (PostgreSQL) or `sqlite_old_too` holds."""
    pg = op.get_bind().dialect.name == "postgresql"
    for statement in _pg(columns, pg_old_when) if pg else _sqlite(columns, sqlite_old_too):
        op.execute(statement)


def upgrade() -> None:
    _run(COLUMNS, "TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.cart_id IS DISTINCT FROM NEW.cart_id)",
         "OLD.cart_id IS NOT NEW.cart_id AND ")


def downgrade() -> None:
    _run(OLD_COLUMNS, "TG_OP IN ('UPDATE', 'DELETE')", "")

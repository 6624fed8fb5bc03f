"""daily figures for the merchant's Performance page, their change marks (triggers), list indexes

Revision ID: 0118
Revises: 0117

The triggers append a row to figure_marks (store, the cart's abandonment time) in the same transaction as
every change that moves a daily figure: a message planned, sent, delivered, opened, clicked or deleted; a
cart abandoned, recovered, completed or deleted; an order recorded, cancelled or re-linked; a holdout
assignment. `recovery.measure.figures.refresh` recounts the marked days (idempotent).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types

revision = "0118"
down_revision = "0117"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = recovery.storage.types.UTCDateTime(timezone=True)
MONEY = recovery.storage.types.Money()

# What moves a figure, per table: (columns whose change matters, how to reach the cart's abandonment time).
MESSAGE_COLUMNS = ("status", "sent_at", "opened_at", "clicked_at", "delivery_status", "step", "channel")
CART_COLUMNS = ("status", "abandoned_at", "recovered_at", "currency")
ORDER_COLUMNS = ("cart_id", "attribution", "cancelled_at", "total", "currency")
ASSIGNMENT_COLUMNS = ("cart_id", "variant", "experiment")


def _pg_triggers() -> list[str]:
    mark_cart = (
        "INSERT INTO figure_marks (store_id, at) SELECT c.store_id, c.abandoned_at FROM carts c "
        "WHERE c.id = {row}.cart_id AND c.abandoned_at IS NOT NULL;"
    )
    out = []
    for table, columns, body_new, body_old in (
        ("recovery_messages", MESSAGE_COLUMNS, mark_cart.format(row="NEW"), mark_cart.format(row="OLD")),
        ("orders", ORDER_COLUMNS, mark_cart.format(row="NEW"), mark_cart.format(row="OLD")),
        ("experiment_assignments", ASSIGNMENT_COLUMNS, mark_cart.format(row="NEW"), mark_cart.format(row="OLD")),
        (
            "carts", CART_COLUMNS,
            "IF NEW.abandoned_at IS NOT NULL THEN INSERT INTO figure_marks (store_id, at) VALUES (NEW.store_id, NEW.abandoned_at); END IF;",
            "IF OLD.abandoned_at IS NOT NULL THEN INSERT INTO figure_marks (store_id, at) VALUES (OLD.store_id, OLD.abandoned_at); END IF;",
        ),
    ):  # fmt: skip
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)
        out.append(f"""
CREATE FUNCTION figures_mark_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN {body_old} END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN {body_new} END IF;
  RETURN NULL;
END $$""")
        out.append(f"CREATE TRIGGER figures_mark_ins AFTER INSERT OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION figures_mark_{table}()")
        out.append(
            f"CREATE TRIGGER figures_mark_upd AFTER UPDATE ON {table} FOR EACH ROW WHEN ({changed}) "
            f"EXECUTE FUNCTION figures_mark_{table}()"
        )
    return out


def _sqlite_triggers() -> list[str]:
    def mark_cart(row: str) -> str:
        return (
            "INSERT INTO figure_marks (store_id, at) SELECT c.store_id, c.abandoned_at FROM carts c "
            f"WHERE c.id = {row}.cart_id AND c.abandoned_at IS NOT NULL;"
        )

    def mark_self(row: str) -> str:
        return (
            f"INSERT INTO figure_marks (store_id, at) SELECT {row}.store_id, {row}.abandoned_at "
            f"WHERE {row}.abandoned_at IS NOT NULL;"
        )

    out = []
    for table, columns, mark in (
        ("recovery_messages", MESSAGE_COLUMNS, mark_cart), ("orders", ORDER_COLUMNS, mark_cart),
        ("experiment_assignments", ASSIGNMENT_COLUMNS, mark_cart), ("carts", CART_COLUMNS, mark_self),
    ):  # fmt: skip
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
        out.append(f"CREATE TRIGGER figures_mark_{table}_ins AFTER INSERT ON {table} BEGIN {mark('NEW')} END")
        out.append(f"CREATE TRIGGER figures_mark_{table}_del AFTER DELETE ON {table} BEGIN {mark('OLD')} END")
        out.append(
            f"CREATE TRIGGER figures_mark_{table}_upd AFTER UPDATE ON {table} WHEN {changed} "
            f"BEGIN {mark('OLD')} {mark('NEW')} END"
        )
    return out


TABLES = ("recovery_messages", "orders", "experiment_assignments", "carts")


def upgrade() -> None:
    op.create_table(
        "daily_figures",
        sa.Column("store_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (
            "planned", "sent", "delivered", "opened", "clicked", "ordered", "abandoned", "recovered",
        )),
        sa.Column("recovered_revenue", MONEY, nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in (
            "treated_carts", "treated_ordered", "holdout_carts", "holdout_ordered",
        )),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_daily_figures_store_id_stores"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("store_id", "day", "step", "channel", "currency", name=op.f("pk_daily_figures")),
    )  # fmt: skip
    op.create_table(
        "figure_marks",
        sa.Column("id", ID, nullable=False),
        sa.Column("store_id", ID, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_figure_marks")),
    )
    # The Carts list: newest activity first, keyset-paginated on (last_activity_at, id) within a store;
    # an order found by its name ("#1001").
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.create_index("ix_carts_store_activity_id", ["store_id", "last_activity_at", "id"], unique=False)
        batch_op.create_index("ix_carts_store_abandoned", ["store_id", "abandoned_at"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_store_name", ["store_id", "name"], unique=False)
    # The setup guide's "tracker seen" check (app/web/merchant/setup.py): without it, an EXISTS over every cart
    # of the store (a 500,000-cart store's Overview spent 0.5 s there).
    op.create_index("ix_carts_store_tracked", "carts", ["store_id"], unique=False,
                    postgresql_where=sa.text("tracked_at IS NOT NULL"), sqlite_where=sa.text("tracked_at IS NOT NULL"))
    # The email search is a prefix (LIKE 'ann%'): indexable on PostgreSQL in any collation with pattern ops.
    op.create_index("ix_carts_store_email_prefix", "carts", ["store_id", "email"], unique=False,
                    postgresql_ops={"email": "varchar_pattern_ops"})
    # The message list of one cart (recovery_messages' unique (cart_id, step) already serves it).
    statements = _pg_triggers() if op.get_bind().dialect.name == "postgresql" else _sqlite_triggers()
    for statement in statements:
        op.execute(statement)
    # Days abandoned before this migration are counted once now.
    # (The first and last abandonment of each UTC hour: an hour overlaps at most two local days, and each
    # of those that holds a cart of the hour holds one of the two.)
    hour = "date_trunc('hour', abandoned_at)" if op.get_bind().dialect.name == "postgresql" else "strftime('%Y-%m-%d %H', abandoned_at)"
    for pick in ("MIN", "MAX"):
        op.execute(
            f"INSERT INTO figure_marks (store_id, at) SELECT store_id, {pick}(abandoned_at) FROM carts "
            f"WHERE abandoned_at IS NOT NULL GROUP BY store_id, {hour}"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS figures_mark_ins ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS figures_mark_upd ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS figures_mark_{table}()")
    else:
        for table in TABLES:
            for kind in ("ins", "del", "upd"):
                op.execute(f"DROP TRIGGER IF EXISTS figures_mark_{table}_{kind}")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_store_name")
    op.drop_index("ix_carts_store_email_prefix", table_name="carts")
    op.drop_index("ix_carts_store_tracked", table_name="carts")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_index("ix_carts_store_abandoned")
        batch_op.drop_index("ix_carts_store_activity_id")
    op.drop_table("figure_marks")
    op.drop_table("daily_figures")

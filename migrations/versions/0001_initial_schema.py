"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 03:48:25.449245
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import recovery.storage.types
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stores',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('credentials', sa.LargeBinary(), nullable=True),
    sa.Column('plan', sa.String(length=32), nullable=False),
    sa.Column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('installed_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('uninstalled_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stores')),
    sa.UniqueConstraint('platform', 'domain', name=op.f('uq_stores_platform_domain'))
    )
    op.create_table('customers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('platform_customer_id', sa.String(length=64), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('first_name', sa.String(length=255), nullable=True),
    sa.Column('last_name', sa.String(length=255), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('timezone', sa.String(length=64), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('orders_count', sa.Integer(), nullable=False),
    sa.Column('email_consent', sa.Boolean(), nullable=False),
    sa.Column('email_consent_source', sa.String(length=32), nullable=True),
    sa.Column('email_consent_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sms_consent', sa.Boolean(), nullable=False),
    sa.Column('sms_consent_source', sa.String(length=32), nullable=True),
    sa.Column('sms_consent_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_customers_store_id_stores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers')),
    sa.UniqueConstraint('store_id', 'platform_customer_id', name=op.f('uq_customers_store_id_platform_customer_id'))
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('ix_customers_store_email', ['store_id', 'email'], unique=False)
        batch_op.create_index('ix_customers_store_phone', ['store_id', 'phone'], unique=False)

    op.create_table('data_exports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('document', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_data_exports_store_id_stores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_exports'))
    )
    with op.batch_alter_table('data_exports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_exports_store_id'), ['store_id'], unique=False)

    op.create_table('suppressions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('created_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_suppressions_store_id_stores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    sa.UniqueConstraint('store_id', 'channel', 'address', name=op.f('uq_suppressions_store_id_channel_address'))
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('shop', sa.String(length=255), nullable=False),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('delivery_id', sa.String(length=128), nullable=False),
    sa.Column('triggered_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('received_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('requeued_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('processed_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=80), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_webhook_deliveries_store_id_stores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('platform', 'shop', 'delivery_id', name=op.f('uq_webhook_deliveries_platform_shop_delivery_id'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_unprocessed', ['processed_at', 'received_at'], unique=False)

    op.create_table('carts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('checkout_token', sa.String(length=255), nullable=True),
    sa.Column('cart_token', sa.String(length=255), nullable=True),
    sa.Column('platform_checkout_id', sa.String(length=64), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('first_name', sa.String(length=255), nullable=True),
    sa.Column('locale', sa.String(length=16), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('province', sa.String(length=8), nullable=True),
    sa.Column('shopper_timezone', sa.String(length=64), nullable=True),
    sa.Column('accepts_email', sa.Boolean(), nullable=False),
    sa.Column('accepts_sms', sa.Boolean(), nullable=False),
    sa.Column('line_items', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subtotal', recovery.storage.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('total', recovery.storage.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('restore_url', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('device', sa.String(length=16), nullable=True),
    sa.Column('platform_updated_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_activity_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('abandon_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('abandoned_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('recovered_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('completed_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_carts_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_carts_store_id_stores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carts')),
    sa.UniqueConstraint('store_id', 'cart_token', name=op.f('uq_carts_store_id_cart_token')),
    sa.UniqueConstraint('store_id', 'checkout_token', name=op.f('uq_carts_store_id_checkout_token'))
    )
    with op.batch_alter_table('carts', schema=None) as batch_op:
        batch_op.create_index('ix_carts_status_abandon_at', ['status', 'abandon_at'], unique=False)
        batch_op.create_index('ix_carts_store_email', ['store_id', 'email'], unique=False)
        batch_op.create_index('ix_carts_store_status_activity', ['store_id', 'status', 'last_activity_at'], unique=False)

    op.create_table('experiment_assignments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cart_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('experiment', sa.String(length=32), nullable=False),
    sa.Column('variant', sa.String(length=32), nullable=False),
    sa.Column('assigned_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cart_id'], ['carts.id'], name=op.f('fk_experiment_assignments_cart_id_carts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_experiment_assignments_store_id_stores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_experiment_assignments')),
    sa.UniqueConstraint('cart_id', 'experiment', name=op.f('uq_experiment_assignments_cart_id_experiment'))
    )
    with op.batch_alter_table('experiment_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_experiment_assignments_store_id'), ['store_id'], unique=False)

    op.create_table('orders',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('platform_order_id', sa.String(length=64), nullable=False),
    sa.Column('cart_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('customer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('checkout_token', sa.String(length=255), nullable=True),
    sa.Column('cart_token', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('name', sa.String(length=64), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total', recovery.storage.types.Money(precision=18, scale=4), nullable=False),
    sa.Column('placed_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attribution', sa.String(length=16), nullable=False),
    sa.Column('cancelled_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cart_id'], ['carts.id'], name=op.f('fk_orders_cart_id_carts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_orders_customer_id_customers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_orders_store_id_stores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('store_id', 'platform_order_id', name=op.f('uq_orders_store_id_platform_order_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_cart_id'), ['cart_id'], unique=False)
        batch_op.create_index('ix_orders_store_cart_token', ['store_id', 'cart_token'], unique=False)
        batch_op.create_index('ix_orders_store_checkout_token', ['store_id', 'checkout_token'], unique=False)

    op.create_table('recovery_messages',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('store_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cart_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('template', sa.String(length=32), nullable=False),
    sa.Column('due_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('opened_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('clicked_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('provider_message_id', sa.String(length=128), nullable=True),
    sa.Column('created_at', recovery.storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cart_id'], ['carts.id'], name=op.f('fk_recovery_messages_cart_id_carts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['store_id'], ['stores.id'], name=op.f('fk_recovery_messages_store_id_stores'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_messages')),
    sa.UniqueConstraint('cart_id', 'step', name=op.f('uq_recovery_messages_cart_id_step'))
    )
    with op.batch_alter_table('recovery_messages', schema=None) as batch_op:
        batch_op.create_index('ix_recovery_messages_status_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recovery_messages_store_id'), ['store_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('recovery_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_messages_store_id'))
        batch_op.drop_index('ix_recovery_messages_status_due')

    op.drop_table('recovery_messages')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_store_checkout_token')
        batch_op.drop_index('ix_orders_store_cart_token')
        batch_op.drop_index(batch_op.f('ix_orders_cart_id'))

    op.drop_table('orders')
    with op.batch_alter_table('experiment_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiment_assignments_store_id'))

    op.drop_table('experiment_assignments')
    with op.batch_alter_table('carts', schema=None) as batch_op:
        batch_op.drop_index('ix_carts_store_status_activity')
        batch_op.drop_index('ix_carts_store_email')
        batch_op.drop_index('ix_carts_status_abandon_at')

    op.drop_table('carts')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_unprocessed')

    op.drop_table('webhook_deliveries')
    op.drop_table('suppressions')
    with op.batch_alter_table('data_exports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_exports_store_id'))

    op.drop_table('data_exports')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_store_phone')
        batch_op.drop_index('ix_customers_store_email')

    op.drop_table('customers')
    op.drop_table('stores')

"""trust boundaries: knowledge-base visibility, operators' knowledge bases, feedback review, logins and audit

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing knowledge base starts internal: an admin publishes the ones customers may see.
    with op.batch_alter_table('knowledge_bases') as batch:
        batch.add_column(sa.Column('visibility', sa.String(length=10), nullable=False, server_default='internal'))
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('knowledge_bases', sa.JSON(), nullable=True))  # None: all of them
    # Customers' ratings wait for an operator before they become training data; the rest were given by staff.
    with op.batch_alter_table('feedback') as batch:
        batch.add_column(sa.Column('review_status', sa.String(length=10), nullable=False, server_default='approved'))
        batch.add_column(sa.Column('reviewed_by', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_feedback_review_status', ['review_status'])
    op.execute("UPDATE feedback SET review_status = 'pending' WHERE given_by = 'customer'")
    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('client', sa.String(length=200), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_login_attempts_name_at', 'login_attempts', ['name', 'at'])
    op.create_index('ix_login_attempts_client_at', 'login_attempts', ['client', 'at'])
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('target', sa.String(length=500), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.Column('client', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])


def downgrade() -> None:
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index('ix_login_attempts_client_at', table_name='login_attempts')
    op.drop_index('ix_login_attempts_name_at', table_name='login_attempts')
    op.drop_table('login_attempts')
    with op.batch_alter_table('feedback') as batch:
        batch.drop_index('ix_feedback_review_status')
        batch.drop_column('reviewed_at')
        batch.drop_column('reviewed_by')
        batch.drop_column('review_status')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('knowledge_bases')
    with op.batch_alter_table('knowledge_bases') as batch:
        batch.drop_column('visibility')

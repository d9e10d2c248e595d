"""feedback, model versions (fine-tuned adapters), verified answers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feedback',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('conversation_key', sa.String(length=200), nullable=False),
    sa.Column('kb', sa.String(length=200), nullable=True),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('rating', sa.String(length=4), nullable=False),
    sa.Column('corrected_answer', sa.Text(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('given_by', sa.String(length=20), nullable=False),
    sa.Column('prompt', sa.JSON(), nullable=True),
    sa.Column('retrieved_chunk_ids', sa.JSON(), nullable=True),
    sa.Column('passages', sa.JSON(), nullable=True),
    sa.Column('model_version', sa.String(length=200), nullable=True),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_conversation_key'), ['conversation_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_kb'), ['kb'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_created_at'), ['created_at'], unique=False)

    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('base_model', sa.String(length=300), nullable=False),
    sa.Column('adapter_path', sa.String(length=2000), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('data_hash', sa.String(length=64), nullable=True),
    sa.Column('snapshot_path', sa.String(length=2000), nullable=True),
    sa.Column('feedback_through_id', sa.Integer(), nullable=True),
    sa.Column('training_metrics', sa.JSON(), nullable=True),
    sa.Column('evaluation_metrics', sa.JSON(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_versions_status'), ['status'], unique=False)

    op.create_table('verified_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kb', sa.String(length=200), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('embedding', sa.JSON(), nullable=True),
    sa.Column('embedding_model', sa.String(length=300), nullable=True),
    sa.Column('approved_by', sa.String(length=200), nullable=False),
    sa.Column('source_feedback_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['source_feedback_id'], ['feedback.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('verified_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_verified_answers_kb'), ['kb'], unique=False)
        batch_op.create_index(batch_op.f('ix_verified_answers_source_feedback_id'), ['source_feedback_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('verified_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_verified_answers_source_feedback_id'))
        batch_op.drop_index(batch_op.f('ix_verified_answers_kb'))
    op.drop_table('verified_answers')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_versions_status'))
    op.drop_table('model_versions')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_created_at'))
        batch_op.drop_index(batch_op.f('ix_feedback_kb'))
        batch_op.drop_index(batch_op.f('ix_feedback_conversation_key'))
        batch_op.drop_index(batch_op.f('ix_feedback_message_id'))
    op.drop_table('feedback')

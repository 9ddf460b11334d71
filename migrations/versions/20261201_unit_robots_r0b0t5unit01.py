"""unit robots

Revision ID: r0b0t5unit01
Revises: a7c1unlock01
Create Date: 2026-12-01 08:35:52.103872
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate writes sqlmodel.sql.sqltypes.AutoString)
from alembic import op

import app.db  # noqa: F401  (autogenerate writes app.db.UTCDateTime)


revision: str = 'r0b0t5unit01'
down_revision: str | None = 'a7c1unlock01'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('unit_robot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('webhook_url', sa.String(length=500), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=True),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('deleted_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_unit_robot_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unit_robot'))
    )
    with op.batch_alter_table('unit_robot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unit_robot_unit_id'), ['unit_id'], unique=False)

    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('robot_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_message_robot_id'), ['robot_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outbox_message_robot_id_unit_robot'), 'unit_robot', ['robot_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_message_robot_id_unit_robot'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_message_robot_id'))
        batch_op.drop_column('robot_id')

    with op.batch_alter_table('unit_robot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unit_robot_unit_id'))

    op.drop_table('unit_robot')

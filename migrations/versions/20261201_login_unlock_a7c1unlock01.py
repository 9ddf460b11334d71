"""login failures an admin cleared for the username (unlock); one active person per mobile number

Revision ID: a7c1unlock01
Revises: d7a2duty0002
Create Date: 2026-12-01 09:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db


revision: str = 'a7c1unlock01'
down_revision: str | None = 'd7a2duty0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cleared_at', app.db.UTCDateTime(), nullable=True))
    op.create_index(
        'uq_person_active_phone',
        'person',
        ['phone'],
        unique=True,
        sqlite_where=sa.text('active'),
        postgresql_where=sa.text('active'),
    )


def downgrade() -> None:
    op.drop_index('uq_person_active_phone', table_name='person')
    with op.batch_alter_table('login_failure', schema=None) as batch_op:
        batch_op.drop_column('cleared_at')

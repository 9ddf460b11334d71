"""chase_open_due: the tick's claim of open chases walks a partial index in timer order

Revision ID: c7a5e0due001
Revises: pr10r1ty0001
Create Date: 2026-12-01 16:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate writes sqlmodel.sql.sqltypes.AutoString)
from alembic import op

import app.db  # noqa: F401  (autogenerate writes app.db.UTCDateTime)


revision: str = 'c7a5e0due001'
down_revision: str | None = 'pr10r1ty0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('chase', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chase_next_step_at'))
        batch_op.create_index('ix_chase_open_due', ['next_step_at'], unique=False, postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))


def downgrade() -> None:
    with op.batch_alter_table('chase', schema=None) as batch_op:
        batch_op.drop_index('ix_chase_open_due', postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
        batch_op.create_index(batch_op.f('ix_chase_next_step_at'), ['next_step_at'], unique=False)

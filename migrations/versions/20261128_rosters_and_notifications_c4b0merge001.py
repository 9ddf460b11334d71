"""rosters and notifications

Revision ID: c4b0merge001
Revises: c3a0roster01, c4a0notify01
Create Date: 2026-11-28 21:31:07.982080
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate writes sqlmodel.sql.sqltypes.AutoString)
from alembic import op

import app.db  # noqa: F401  (autogenerate writes app.db.UTCDateTime)


revision: str = 'c4b0merge001'
down_revision: str | None = ('c3a0roster01', 'c4a0notify01')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

"""The stored versions of the rules document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.db import UTCDateTime


class ResponseRules(SQLModel, table=True):
    __tablename__ = "response_rules"

    version: int = SQLField(primary_key=True)
    document: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    created_at: datetime = SQLField(sa_type=UTCDateTime)
    created_by: str = SQLField(max_length=120)

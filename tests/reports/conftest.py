"""Report tests keep hazard photos in a directory of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.config import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return report_settings(database_url, tmp_path)


def report_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        DATABASE_URL=database_url,
        DUTYLINE_SECRET_KEY="test-secret-key-not-for-production",
        DUTYLINE_LOG_FORMAT="text",
        DUTYLINE_DISPATCHER=False,
        DUTYLINE_SCHEDULER=False,
        DUTYLINE_DATA_DIR=str(tmp_path / "data"),
        DUTYLINE_SMS_DAILY_BUDGET=1000,
    )

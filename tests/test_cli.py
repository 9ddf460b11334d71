from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.auth import api_keys
from app.auth.models import ApiKey


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_help_lists_the_commands() -> None:
    out = run("sqlite://", "--help").stdout
    for command in ("migrate", "load-units", "create-user", "create-agency", "create-api-key", "serve", "demo"):
        assert command in out


@pytest.mark.usefixtures("engine")
def test_agency_key_and_user_from_the_command_line(database_url: str, client: TestClient, session: Session) -> None:
    r = run(database_url, "create-agency", "--code", "119", "--name", "消防119", "--kind", "fire")
    assert r.returncode == 0, r.stderr
    r = run(database_url, "create-api-key", "--agency", "119", "--scopes", "incidents:write,incidents:read")
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip().splitlines()[-1]
    stored = session.exec(select(ApiKey)).one()
    assert stored.digest == api_keys.digest(key) and stored.scopes == ["incidents:read", "incidents:write"]

    r = run(
        database_url,
        "create-user",
        "--username",
        "ft",
        "--password",
        "Fengtai-2026",
        "--name",
        "丰台值班",
        "--phone",
        "+8613811112222",
        "--unit",
        "110106",
        "--role",
        "duty_officer",
        "--role",
        "leader",
    )
    assert r.returncode == 0, r.stderr
    token = client.post("/api/v1/auth/token", data={"username": "ft", "password": "Fengtai-2026"})
    assert token.status_code == 200


@pytest.mark.usefixtures("engine")
def test_errors_are_one_line_on_stderr(database_url: str) -> None:
    r = run(
        database_url,
        "create-user",
        "--username",
        "bad",
        "--password",
        "Fengtai-2026",
        "--name",
        "x",
        "--phone",
        "12345678901",
        "--unit",
        "110106",
        "--role",
        "viewer",
    )
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "phone" in r.stderr
    r = run(database_url, "create-api-key", "--agency", "nope", "--scopes", "incidents:write")
    assert r.returncode == 1 and r.stderr.startswith("error: no agency")
    r = run(database_url, "load-units", "/nonexistent.json")
    assert r.returncode == 1 and "does not exist" in r.stderr

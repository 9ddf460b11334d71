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


def test_every_command_and_option_explains_itself() -> None:
    """A newcomer reads `--help`: each command has a description, each option a help text, every role and
    agency kind is offered, and the API key scopes are listed."""
    import argparse

    from app.auth.principal import API_KEY_SCOPES
    from app.cli import build_parser
    from app.org.models import AgencyKind, Role

    parser = build_parser()
    assert "first steps" in parser.format_help() and "dutyline demo" in parser.format_help()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in commands.choices.items():
        assert command.description, name
        unexplained = [a.dest for a in command._actions if not a.help]
        assert unexplained == [], f"{name}: options without help: {unexplained}"
        assert "default: None" not in command.format_help(), name
    create_user = commands.choices["create-user"].format_help()
    assert all(role.value in create_user for role in Role)
    assert all(kind.value in commands.choices["create-agency"].format_help() for kind in AgencyKind)
    scopes = commands.choices["create-api-key"].format_help().replace("\n", " ")
    assert all(scope in " ".join(scopes.split()) for scope in API_KEY_SCOPES)


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

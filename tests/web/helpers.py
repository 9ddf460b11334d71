"""Signing in to the console the way a browser does: fetch the form, echo its token, keep the cookie."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.factories import PASSWORD

_CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)"')


def login_token(client: TestClient) -> str:
    page = client.get("/console/login")
    assert page.status_code == 200, page.text
    match = _CSRF_INPUT.search(page.text)
    assert match, "the sign-in form carries a CSRF token"
    return match.group(1)


def console_sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Signs in and returns the session's CSRF token (from the board page, as the browser sees it)."""
    token = login_token(client)
    r = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf": token, "next": "/console/board"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    board = client.get("/console/board")
    assert board.status_code == 200, board.text
    match = _CSRF_META.search(board.text)
    assert match and match.group(1)
    return match.group(1)

"""The API docs work on an intranet with no internet: every script, style sheet and icon /docs and /redoc
reference is served by the service itself."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

# src="…", href="…", and the quoted URLs Swagger UI's inline set-up passes (url: '…', oauth2RedirectUrl: …).
_ATTR = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""")
_JS_URL = re.compile(r"""(?:url|oauth2RedirectUrl)\s*:\s*(?:window\.location\.origin\s*\+\s*)?["'`]([^"'`]+)["'`]""")


def _references(html: str) -> list[str]:
    return sorted(set(_ATTR.findall(html)) | set(_JS_URL.findall(html)))


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_the_service(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    refs = _references(r.text)
    assert refs, f"{page} references no assets?"
    assert not any("cdn" in ref or "fonts.googleapis" in ref for ref in refs), refs
    assets = 0
    for ref in refs:
        absolute = urljoin("http://testserver" + page, ref)
        parts = urlsplit(absolute)
        assert parts.netloc == "testserver", f"{page} points off-host: {ref}"
        answer = client.get(parts.path + (f"?{parts.query}" if parts.query else ""))
        assert answer.status_code == 200, f"{ref} answered {answer.status_code}"
        if parts.path.endswith((".js", ".css")):
            assets += 1
            assert len(answer.content) > 1000, f"{ref} is nearly empty"
    assert assets >= (2 if page == "/docs" else 1)
    if page == "/docs":
        assert "/openapi.json" in refs and any(ref.endswith("swagger-ui-bundle.js") for ref in refs)


def test_the_default_fastapi_docs_would_have_needed_a_cdn() -> None:
    """The check above can tell: FastAPI's own page points at jsDelivr."""
    from fastapi.openapi.docs import get_swagger_ui_html

    html = bytes(get_swagger_ui_html(openapi_url="/openapi.json", title="x").body).decode()
    assert any(urlsplit(ref).netloc for ref in _references(html))

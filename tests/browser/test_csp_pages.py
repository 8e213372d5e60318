"""Under the Content-Security-Policy (issue 22 point 4) the API docs draw from vendored files,
with no violation or script error in the console."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_draw_under_the_csp_from_our_own_files(live_server, new_page):
    page = new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server.url}/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert page.locator(".swagger-ui .opblock").count() > 10
    assert page.console_log.errors == []
    assert requested and all(url.startswith(live_server.url) for url in requested), requested

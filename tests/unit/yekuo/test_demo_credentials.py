"""What `yekuo demo` prints to log in: the admin token and where the dashboard is, and the token opens it."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ground.settings import Settings
from tests.support.app import hub_app
from yekuo.demo import demo_credentials


def test_the_demo_prints_the_dashboard_and_a_token_that_logs_in(sqlite_engine: Engine) -> None:
    settings, credentials = demo_credentials(Settings())
    lines = credentials.describe("http://127.0.0.1:8123")
    assert re.search(r"^  dashboard .*: http://127\.0\.0\.1:8123/ui/$", lines, re.MULTILINE), lines
    assert credentials.admin_token in lines

    browser = TestClient(hub_app(sqlite_engine, auth=settings.auth))
    form = browser.get("/ui/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    browser.post("/ui/login", data={"token": credentials.admin_token, "csrf_token": csrf[1]})
    page = browser.get("/ui/overview")
    assert page.status_code == 200 and "demo-admin" in page.text

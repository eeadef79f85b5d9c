"""Issue #9, should-fix: security headers and a Content-Security-Policy without inline script
on every HTML page; no caching of pages with personal data; the API docs off by default.

Checked over HTTP on every page, on the rendered HTML (no inline script or handler left that
the policy would block), and in Debian's headless Chromium, which must report no violation
of the policy while an operator and a web-chat visitor use the pages.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from core.config import Settings
from inbox.models import Conversation
from inbox.runtime import Runtime
from inbox.web.ui.live import serve_in_thread
from otklik.demo import load_demo
from otklik.web import create_app
from tests.helpers.ui import login

#: Headers do not depend on the database: the pages are rendered from SQLite only.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

CHROMIUM = "/usr/bin/chromium"
#: Markup a CSP without 'unsafe-inline' blocks: inline scripts, handlers, styles, JS URLs.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|\sstyle\s*=|<style\b|javascript:", re.I
)


@pytest.fixture
def rt(runtime: Runtime) -> Runtime:
    load_demo(runtime)
    return runtime


def _pages(rt: Runtime) -> list[str]:
    with rt.factory() as session:
        conversation = session.exec(select(Conversation)).first()
    assert conversation is not None
    return [
        "/ui/inbox", f"/ui/c/{conversation.id}", "/ui/dashboard", "/ui/settings/readability",
        "/ui/admin/operators", "/ui/admin/profile", "/ui/admin/rules", "/ui/admin/kb",
        "/ui/account", "/ui/c/999999",  # an error page
    ]  # fmt: skip


def _check_html(url: str, answer: object) -> None:
    headers = answer.headers  # type: ignore[attr-defined]
    assert headers["content-type"].startswith("text/html"), url
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
    assert headers["x-frame-options"] == "DENY", url
    assert headers["x-content-type-options"] == "nosniff", url
    assert headers["referrer-policy"] == "same-origin", url
    assert INLINE.findall(answer.text) == [], url  # type: ignore[attr-defined]


@sqlite_only
def test_every_html_page_has_the_security_headers_and_no_inline_script(rt: Runtime) -> None:
    with TestClient(create_app(rt, start_scheduler=False)) as client:
        for url in ("/ui/login", "/public/ratings", "/chat"):
            _check_html(url, client.get(url))
        login(client, "admin", "admin-demo")
        for url in _pages(rt):
            answer = client.get(url)
            _check_html(url, answer)
            assert answer.headers["cache-control"] == "no-store", url  # personal data
        kb = client.get("/ui/admin/kb")
        entry = re.search(r'href="(/ui/admin/kb/[^"]+)"', kb.text)
        assert entry
        _check_html(entry.group(1), client.get(entry.group(1)))
        # The JSON APIs hold personal data too; static files and public ratings may be cached.
        assert client.get("/api/queue").headers["cache-control"] == "no-store"
        assert client.get("/api/chat/messages").headers["cache-control"] == "no-store"
        assert "no-store" not in client.get("/ui/static/app.js").headers.get("cache-control", "")
        assert "no-store" not in client.get("/public/ratings").headers.get("cache-control", "")
        assert client.get("/ui/static/app.js").headers["x-content-type-options"] == "nosniff"


def test_no_template_or_static_page_carries_inline_script() -> None:
    root = Path(__file__).resolve().parents[2]
    pages = [
        *(root / "inbox/web/ui/templates").glob("*.html"),
        root / "bot/webchat/static/chat.html",
    ]
    found = {p.name: INLINE.findall(p.read_text(encoding="utf-8")) for p in pages}
    assert {name: hits for name, hits in found.items() if hits} == {}


@sqlite_only
def test_api_docs_are_off_unless_asked_for(rt: Runtime) -> None:
    app = create_app(rt, start_scheduler=False)
    with TestClient(app) as client:
        assert [client.get(u).status_code for u in ("/docs", "/redoc", "/openapi.json")] == [
            404, 404, 404,
        ]  # fmt: skip
    assert "/api/queue" in app.openapi()["paths"]  # tests and tools still get the schema
    on = dataclasses.replace(rt, settings=rt.settings.model_copy(update={"api_docs": True}))
    with TestClient(create_app(on, start_scheduler=False)) as client:
        assert [client.get(u).status_code for u in ("/docs", "/redoc", "/openapi.json")] == [
            200, 200, 200,
        ]  # fmt: skip


@sqlite_only
def test_only_the_listed_sites_may_frame_the_web_chat(rt: Runtime) -> None:
    with TestClient(create_app(rt, start_scheduler=False)) as client:
        chat = client.get("/chat")
    assert chat.headers["x-frame-options"] == "DENY"  # by default nobody frames anything
    assert "frame-ancestors 'none'" in chat.headers["content-security-policy"]
    site = "https://www.agency.example"
    settings = rt.settings.model_copy(update={"webchat_frame_ancestors": [site]})
    embeddable = dataclasses.replace(rt, settings=settings)
    with TestClient(create_app(embeddable, start_scheduler=False)) as client:
        chat = client.get("/chat")
        login = client.get("/ui/login")
    assert chat.headers["content-security-policy"].endswith(f"frame-ancestors {site}")
    assert "x-frame-options" not in chat.headers
    assert login.headers["x-frame-options"] == "DENY"  # the operators' pages never
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]
    with pytest.raises(ValueError, match="not an origin"):
        Settings(webchat_frame_ancestors="https://www.agency.example/chat")


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") or os.environ.get("OTKLIK_REQUIRE_E2E"):
            pytest.fail(f"{CHROMIUM} is missing (scripts/install-system-deps.sh installs it)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(locale="ru-RU")
        # Every violation of the policy, as the browser reports it to the page.
        context.add_init_script(
            "window.__csp = []; document.addEventListener('securitypolicyviolation',"
            " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        yield context.new_page()
        browser.close()


@pytest.mark.e2e
@sqlite_only
def test_the_pages_work_in_chromium_without_violating_the_policy(
    rt: Runtime, browser_page: object
) -> None:
    from playwright.sync_api import Page, expect

    page: Page = browser_page  # type: ignore[assignment]
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    violations: list[str] = []
    with serve_in_thread(create_app(rt, start_scheduler=False)) as base:
        page.goto(f"{base}/ui/login")
        page.get_by_label("Логин").fill("admin")
        page.get_by_label("Пароль").fill("admin-demo")
        page.get_by_role("button", name="Войти").click()
        expect(page).to_have_url(f"{base}/ui/inbox")
        # The filters apply on change (a handler in app.js now, not an inline onchange).
        page.get_by_label("Канал").select_option("telegram")
        expect(page).to_have_url(re.compile(r"channel=telegram"))
        page.locator("#queue a").first.click()
        expect(page.locator("#reply-text")).to_be_visible()
        page.locator("#reply-text").fill("Здравствуйте! Проверим и ответим сегодня.")
        expect(page.locator("#readability .verdict")).to_be_visible()  # htmx works
        violations += page.evaluate("window.__csp")
        for url in ("/ui/dashboard", "/ui/admin/operators", "/public/ratings", "/chat"):
            page.goto(f"{base}{url}")
            page.wait_for_load_state("networkidle")
            violations += page.evaluate("window.__csp")
        page.get_by_role("button", name="Главное меню").click()  # chat.js runs
        expect(page.locator("#log li").first).to_be_visible()
        violations += page.evaluate("window.__csp")
    assert violations == []
    assert [m for m in console if "Content Security Policy" in m] == []

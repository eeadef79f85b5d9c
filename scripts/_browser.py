"""Shared bits of the screenshot scripts: where the pictures go (``--out``), a runtime on a fresh
SQLite database with the demo data, the app served on a local port to headless Chromium, and
an operator's logged-in page."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, sync_playwright

from core.clock import FrozenClock, SystemClock
from core.config import RULES_DIR, Settings
from inbox.db import upgrade
from inbox.runtime import Runtime, build_runtime
from inbox.web.ui.live import serve_in_thread
from otklik.demo import load_demo
from otklik.web import create_app

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip


def out_dir(description: str) -> Path:
    """The folder of ``--out`` (docs/screenshots unless given), created if need be."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNG files go")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    return out


def demo_runtime(
    prefix: str, *, demo: bool = True, private_rules: bool = False
) -> tuple[Runtime, FrozenClock]:
    """A runtime on a fresh SQLite file in a temporary folder, its clock frozen at now; with
    ``demo`` the demo data, with ``private_rules`` its own copy of the rules and profile (the
    admin pages write to them)."""
    data = Path(tempfile.mkdtemp(prefix=prefix))
    url = f"sqlite:///{data / 'otklik.sqlite3'}"
    upgrade(url)
    settings: dict[str, Any] = {}
    if private_rules:
        rules = data / "rules"
        shutil.copytree(RULES_DIR, rules, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        settings = {"rules_dir": rules, "profile": rules / "agency.example.yaml"}
    clock = FrozenClock(SystemClock().now())
    rt = build_runtime(Settings(database_url=url, data_dir=data, **settings), clock=clock)
    if demo:
        load_demo(rt)
    return rt, clock


@contextmanager
def served(rt: Runtime) -> Iterator[tuple[str, Browser]]:
    """The app's base URL and a headless Chromium; the runtime is disposed afterwards."""
    with serve_in_thread(create_app(rt, start_scheduler=False)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield base, browser
        finally:
            browser.close()
    rt.dispose()


def logged_in(browser: Browser, base: str, login: str, password: str) -> Page:
    """A desktop-sized page with the operator ``login`` logged in."""
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    page.goto(f"{base}/ui/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    return page


def snap(page: Page, url: str, path: Path) -> None:
    """Open ``url`` and save the whole page (full height) as ``path``."""
    page.goto(url)
    page.screenshot(path=str(path), full_page=True)

"""Every page a signed-in person can reach by following links, at 1366 px: no raw template
syntax, no Python reprs (True/False/None, ['a'], {'k': …}), no horizontal overflow; as a
newcomer without a team and as a developer of `payments`."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlparse

import pytest
from playwright.sync_api import BrowserContext, Page
from sqlmodel import Session, select

from portal.auth import service as auth_service
from portal.auth.models import User
from tests.conftest import PASSWORD
from tests.frontend.conftest import LiveServer, screenshot, sign_in

pytestmark = pytest.mark.browser

MAX_PAGES = 60
RAW = [re.compile(p) for p in (
    r"\$\{\{", r"\{\{", r"\{%", r"\bTrue\b", r"\bFalse\b", r"\bNone\b", r"\['", r"\{'",
    r"<built-in", r"object at 0x")]
SKIP = ("/logout", "/static/", "/api/", "/favicon")


def _problems(page: Page) -> list[str]:
    text = page.locator("body").inner_text()
    # Code blocks show files as they are (YAML, diffs, logs): only the page's own words count.
    for block in page.locator("pre, code, textarea").all_inner_texts():
        text = text.replace(block, "")
    found = [f"{pattern.pattern} in …{text[max(0, m.start() - 40):m.end() + 40]!r}…"
             for pattern in RAW for m in [pattern.search(text)] if m]
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > 1366:
        found.append(f"page is {width} px wide at 1366 px")
    return found


def _crawl(page: Page, start: list[str]) -> dict[str, list[str]]:
    seen: list[str] = []
    queue = list(start)
    problems: dict[str, list[str]] = {}
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.append(url)
        page.goto(url)
        if found := _problems(page):
            problems[url] = found
        for href in page.eval_on_selector_all(
                "a[href]", "els => els.map(e => e.getAttribute('href'))"):
            target = urlparse(str(href))
            if target.scheme or target.netloc or not str(href).startswith("/"):
                continue
            path = str(href).split("#")[0]
            # one page per kind of URL with a cursor or a filter is enough
            if any(path.startswith(s) for s in SKIP) or "cursor=" in path or path in seen:
                continue
            queue.append(path)
    return problems


def test_every_reachable_page_reads_as_words_at_1366(
        new_context: Callable[[], BrowserContext], live_server: LiveServer) -> None:
    with Session(live_server.engine, expire_on_commit=False) as s:
        if not s.exec(select(User).where(User.username == "nina")).first():
            auth_service.create_user(s, username="nina", password=PASSWORD)
    for who in ("nina", "dana"):
        page = sign_in(new_context(), who)
        page.set_viewport_size({"width": 1366, "height": 900})
        problems = _crawl(page, ["/", "/catalog", "/templates", "/changes",
                                 "/search?q=payments", "/catalog/environments/dev"])
        assert problems == {}, who
    screenshot(page, "sweep-last-page")

"""Browser harness: the real app under uvicorn on a loopback port, driven by Debian's chromium.

One server and one browser per session (they are the expensive parts); each test gets a fresh
browser context, so cookies never leak between users.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)
from sqlalchemy import Engine
from sqlmodel import Session

from catalog import service as catalog_service
from devtools.ports import free_port
from gitops.forges.factory import make_forge
from gitops.git import seed_repository
from portal import db
from portal.app import create_app
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.settings import Settings
from scaffolder.parameters import ParameterContext, validate_answers
from scaffolder.registry import Registry
from scaffolder.render import render
from tests.conftest import PASSWORD, REPO_ROOT, make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Dry runs render, build and check for real (kustomize, Rego) on 2 cores: allow for it.
expect.set_options(timeout=20_000)
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"

# Who exists in the browser tests: a developer and a reviewer of team `payments`, an admin.
USERS: dict[str, tuple[dict[str, Role], bool]] = {
    "dana": ({"payments": Role.developer}, False),
    "rui": ({"payments": Role.reviewer}, False),
    "ada": ({}, True),
}


@dataclass
class LiveServer:
    url: str
    settings: Settings
    engine: Engine


def _seed(folder: Path, settings: Settings) -> Path:
    """The skeleton plus team `payments` and environment `dev`, rendered by the real templates
    (as if their PRs had been merged), so a developer of `payments` can request a tenant."""
    shutil.copytree(settings.skeleton_dir, folder)
    registry = Registry(settings)
    context = ParameterContext(teams=frozenset({"payments"}), environments=frozenset({"dev"}))
    units = {
        "team": {"team": "payments", "display_name": "Payments", "cost_center": "cc-payments",
                 "owners": ["rui"], "members": ["dana"]},
        "environment": {"environment": "dev", "provider": "local", "region": "local",
                        "tier": "dev"},
    }
    for name, answers in units.items():
        template = registry.get(name)
        clean = validate_answers(template.parameters, answers, context=context)
        target = template.fill(template.target_path, clean)
        if (folder / target).exists():
            continue
        for path, content in render(template, clean, target=target).items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)
    return folder


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("ui")
    port = free_port()
    settings = make_settings(root, f"sqlite:///{root / 'caas.db'}", port=port,
                             base_url=f"http://127.0.0.1:{port}")
    engine = db.make_engine(settings)
    db.upgrade(engine)
    seed_repository(settings.resolved_gitops_repo, _seed(root / "seed", settings))
    with Session(engine, expire_on_commit=False) as s:
        for username, (teams, admin) in USERS.items():
            auth_service.create_user(s, username=username, password=PASSWORD,
                                     display_name=username.title(), is_platform_admin=admin)
            for team, role in teams.items():
                auth_service.ensure_team(s, name=team)
                auth_service.add_member(s, team=team, username=username, role=role)
    with Session(engine, expire_on_commit=False) as s:  # as `caas catalog reindex` does
        catalog_service.reindex(s, forge=make_forge(settings, engine))
    app = create_app(settings, engine=engine, background=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, name="ui-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the portal did not start for the browser tests")
        time.sleep(0.05)
    yield LiveServer(url=f"http://127.0.0.1:{port}", settings=settings, engine=engine)
    server.should_exit = True
    thread.join(timeout=30)
    engine.dispose()


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is open, which would break every pytest-asyncio test collected after these.
@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def chromium(playwright_driver: Playwright) -> Iterator[Browser]:
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def new_context(chromium: Browser, live_server: LiveServer
                ) -> Iterator[Callable[[], BrowserContext]]:
    """Fresh contexts (one per simulated person); all closed after the test."""
    opened: list[BrowserContext] = []

    def factory() -> BrowserContext:
        context = chromium.new_context(base_url=live_server.url,
                                       viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        opened.append(context)
        return context

    yield factory
    for context in opened:
        context.close()


def sign_in(context: BrowserContext, username: str) -> Page:
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))  # the viewport: full pages of long diffs are slow
    return path


def unlabelled_controls(page: Page) -> list[str]:
    """Form controls without an accessible name (a <label>, aria-label or aria-labelledby)."""
    names: list[str] = page.evaluate("""() => Array.from(document.querySelectorAll(
        'input:not([type=hidden]), select, textarea'))
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                      && !el.getAttribute('aria-labelledby'))
        .map(el => el.name || el.id || el.outerHTML.slice(0, 60))""")
    return names


def tab_to(page: Page, selector: str, *, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has the focus (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
    raise AssertionError(f"Tab never reached {selector}")

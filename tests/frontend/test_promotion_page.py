"""Promotion from the application page in a real browser (issue 16): the matrix shows source,
chart, revision and sync policy per environment; "Promote" opens the PR whose gates are checks.
Its own server: the shared one has no second environment, and other tests count on that."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, expect
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
from tests.conftest import PASSWORD, make_settings
from tests.frontend.axe_check import serious_violations
from tests.frontend.conftest import screenshot, sign_in, unlabelled_controls

pytestmark = pytest.mark.browser

UNITS = (
    ("team", {"team": "payments", "display_name": "Payments", "cost_center": "cc-payments",
              "owners": ["rui"], "members": ["dana"]}),
    ("environment", {"environment": "dev", "provider": "local", "region": "local",
                     "tier": "dev"}),
    ("environment", {"environment": "staging", "provider": "local", "region": "local",
                     "tier": "staging"}),
    ("tenant", {"team": "payments", "name": "web", "cost_center": "cc-1",
                "environments": ["dev", "staging"]}),
    ("application", {"team": "payments", "name": "shop", "tenant": "web", "environment": "dev",
                     "repo_url": "https://charts.example.com", "revision": "1.2.3",
                     "chart": "shop", "helm_parameters": [
                         {"name": "image.repository", "value": "ghcr.io/example-org/shop"},
                         {"name": "image.tag", "value": "1.2.3"}]}),
)


def _seed(folder: Path, settings: Settings) -> Path:
    shutil.copytree(settings.skeleton_dir, folder)
    registry = Registry(settings)
    context = ParameterContext(teams=frozenset({"payments"}),
                               environments=frozenset({"dev", "staging"}))
    for name, answers in UNITS:
        template = registry.get(name)
        clean = validate_answers(template.parameters, answers, context=context)
        target = template.fill(template.target_path, clean)
        if (folder / target).exists():
            continue
        for path, content in render(template, clean, target=target).items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("promotion-ui")
    port = free_port()
    settings = make_settings(root, f"sqlite:///{root / 'caas.db'}", port=port,
                             base_url=f"http://127.0.0.1:{port}")
    engine = db.make_engine(settings)
    db.upgrade(engine)
    seed_repository(settings.resolved_gitops_repo, _seed(root / "seed", settings))
    with Session(engine, expire_on_commit=False) as s:
        auth_service.create_user(s, username="dana", password=PASSWORD, display_name="Dana")
        auth_service.create_user(s, username="ada", password=PASSWORD, display_name="Ada",
                                 is_platform_admin=True)
        auth_service.ensure_team(s, name="payments")
        auth_service.add_member(s, team="payments", username="dana", role=Role.developer)
        catalog_service.reindex(s, forge=make_forge(settings, engine))
    app = create_app(settings, engine=engine, background=False)
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, name="promotion-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the portal did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=30)
    engine.dispose()


@pytest.fixture
def context(chromium: Browser, server: str) -> Iterator[Callable[[], BrowserContext]]:
    opened: list[BrowserContext] = []

    def factory() -> BrowserContext:
        ctx = chromium.new_context(base_url=server, viewport={"width": 1280, "height": 900})
        ctx.set_default_timeout(15_000)
        opened.append(ctx)
        return ctx

    yield factory
    for ctx in opened:
        ctx.close()


def test_promote_from_the_application_page(context: Callable[[], BrowserContext]) -> None:
    dana = sign_in(context(), "dana")
    dana.goto("/catalog/applications/payments/shop")
    matrix = dana.get_by_role("table", name=re.compile("each environment"))
    dev = matrix.locator("tr[data-env=dev]")
    expect(dev).to_contain_text("https://charts.example.com")
    expect(dev).to_contain_text("chart shop")
    expect(dev.locator(".revision")).to_have_text("1.2.3")
    expect(dev).to_contain_text("ghcr.io/example-org/shop:1.2.3")
    expect(dev).to_contain_text("automated (prune, self-heal)")
    expect(dev).to_contain_text("not connected")
    assert unlabelled_controls(dana) == []
    assert serious_violations(dana) == []
    dana.locator("#promotion").scroll_into_view_if_needed()
    screenshot(dana, "promotion-application-page")

    dana.get_by_label("From").select_option("dev")
    dana.get_by_label("To").select_option("staging")
    dana.get_by_role("button", name="Promote").click()
    expect(dana).to_have_url(re.compile(r"/tasks/\d+$"))
    expect(dana.get_by_role("list", name="Step log")).to_contain_text("pull-request")
    screenshot(dana, "promotion-task")
    dana.goto("/catalog/applications/payments/shop")
    opened = dana.locator("tr[data-env=dev]").get_by_role("link", name="promotion open")
    expect(opened).to_have_count(0)  # the open promotion goes into staging, not dev
    dana.goto("/changes")
    dana.get_by_role("link", name="Promote payments/shop").first.click()
    main = dana.locator("main")
    expect(main).to_contain_text("source-health")
    expect(main).to_contain_text("unknown: no cluster connected")
    expect(main).to_contain_text("applications/payments/shop/envs/staging/application.yaml")
    assert serious_violations(dana) == []
    screenshot(dana, "promotion-change")

    # The gates as buttons: dana may re-check but not override (disabled, the reason beside).
    change_url = dana.url
    recheck = dana.get_by_role("button", name="Re-check gates")
    expect(recheck).to_be_enabled()
    override = dana.get_by_role("button", name="Override source-health")
    expect(override).to_be_disabled()
    expect(dana.locator("#why-override")).to_have_text(
        "only a platform-admin overrides a promotion gate")
    expect(dana.get_by_label("Reason for overriding source-health")).to_be_disabled()
    recheck.click()
    expect(dana.locator("p.alert[role=status]")).to_have_text("Gates evaluated again.")
    expect(dana.locator("main")).to_contain_text("unknown: no cluster connected")

    ada = sign_in(context(), "ada")
    ada.goto(change_url)
    reason = ada.get_by_label("Reason for overriding source-health")
    expect(reason).to_be_enabled()
    assert unlabelled_controls(ada) == []
    assert serious_violations(ada) == []
    ada.locator("#override-form").scroll_into_view_if_needed()
    screenshot(ada, "promotion-gate-buttons")
    reason.fill("cluster link down; smoke-tested on dev by hand")
    ada.get_by_role("button", name="Override source-health").click()
    expect(ada).to_have_url(re.compile(r"done=override"))
    expect(ada.locator("main")).to_contain_text("overridden by ada: cluster link down")
    assert serious_violations(ada) == []


def test_promote_a_tenants_quota_from_the_namespace_page(
        context: Callable[[], BrowserContext]) -> None:
    dana = sign_in(context(), "dana")
    dana.goto("/catalog/namespaces/payments/payments-web")
    card = dana.get_by_role("region", name="Promote the quota")
    expect(card.get_by_label("From")).to_have_value("dev")
    expect(card.get_by_label("To")).to_have_value("staging")
    assert unlabelled_controls(dana) == []
    assert serious_violations(dana) == []
    card.scroll_into_view_if_needed()
    screenshot(dana, "promotion-tenant-quota")
    # The seeded tenant has one quota everywhere: the refusal names the field and the rule.
    card.get_by_role("button", name="Promote quota").click()
    expect(dana.locator("main")).to_contain_text("to: staging already has dev's quota")
    assert serious_violations(dana) == []

"""Remove an application from its page (issue 15) and the actions that tell why not (issue 17),
in the browser: Remove → decommission PR (its page: the author's Approve disabled with the
four-eyes rule; the application page lists it under "Open changes") → a reviewer approves and
merges → the in-process reconciler indexes main → the catalog keeps the application as
decommissioned, with the PR linked from its timeline; lists hide it unless asked. axe-core on
the new pages; screenshots in test-artifacts/screenshots/."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlmodel import Session

from catalog import service as catalog_service
from gitops import gittree
from gitops.forges.base import FileChange
from gitops.forges.factory import make_forge
from scaffolder.parameters import ParameterContext, validate_answers
from scaffolder.registry import Registry
from scaffolder.render import render
from tests.frontend.axe_check import serious_violations
from tests.frontend.conftest import LiveServer, screenshot, sign_in

pytestmark = pytest.mark.browser
APP_PAGE = "/catalog/applications/payments/shop"


def merged_application(live_server: LiveServer, name: str = "shop") -> None:
    """Application ``payments/<name>`` on main, rendered by the real template (as if its PR had
    been merged), and the catalog re-indexed."""
    settings, engine = live_server.settings, live_server.engine
    template = Registry(settings).get("application")
    answers = validate_answers(template.parameters, {
        "team": "payments", "name": name, "tenant": "web", "environment": "dev",
        "source_type": "helm", "repo_url": "https://charts.example.com/shop",
        "revision": "1.2.3", "chart": "shop"},
        context=ParameterContext(teams=frozenset({"payments"}),
                                 environments=frozenset({"dev"})))
    files = render(template, answers, target=template.fill(template.target_path, answers))
    forge = make_forge(settings, engine)
    before = forge.head()
    commit = gittree.commit_files(
        settings.resolved_gitops_repo, parent=before, message=f"application payments/{name}",
        author="tester", files=[FileChange(path=p, content=c) for p, c in files.items()])
    assert gittree.update_ref(settings.resolved_gitops_repo, "main", commit, before)
    with Session(engine) as session:
        catalog_service.reindex(session, forge=forge)


def _wait_for_status(page: Page, word: str) -> None:
    status = page.get_by_role("group", name="Status")
    deadline = time.monotonic() + 120  # the in-process reconciler on 2 busy cores
    while word not in (status.all_inner_texts() or [""])[0]:
        assert time.monotonic() < deadline, page.locator("main").inner_text()
        page.wait_for_timeout(500)
        page.reload()


def test_remove_an_application_from_its_page(new_context: Callable[[], BrowserContext],
                                             live_server: LiveServer) -> None:
    merged_application(live_server)
    dana = sign_in(new_context(), "dana")
    dana.goto(APP_PAGE)
    expect(dana.get_by_role("heading", level=1)).to_contain_text("shop")
    remove = dana.get_by_role("button", name="Remove")
    expect(remove).to_be_enabled()
    remove.click()
    expect(dana).to_have_url(re.compile(r"/tasks/\d+$"))
    dana.get_by_role("link", name=re.compile("Open the change")).click()
    expect(dana).to_have_url(re.compile(r"/changes/\d+$"))
    change_url = dana.url
    expect(dana.get_by_role("heading", level=1)).to_contain_text(
        "Decommission application:payments/shop")
    # The author's own buttons: disabled, each with its reason beside it.
    expect(dana.get_by_role("button", name="Approve")).to_be_disabled()
    expect(dana.locator("#why-approve")).to_have_text(
        "nobody approves their own change (four-eyes rule)")
    expect(dana.get_by_role("button", name="Merge")).to_be_disabled()
    expect(dana.locator("#why-merge")).to_have_text(
        "needs an approval from someone other than the author")
    expect(dana.get_by_role("button", name="Close")).to_be_enabled()
    assert serious_violations(dana) == []
    screenshot(dana, "change-actions-disabled")
    number = re.search(r"#(\d+)", dana.get_by_role("heading", level=1).inner_text())
    assert number

    # The application page lists the open change, linked.
    dana.goto(APP_PAGE)
    opened = dana.get_by_role("region", name="Open changes")
    expect(opened.get_by_role("link", name=f"#{number.group(1)}")).to_have_attribute(
        "href", change_url.removeprefix(live_server.url))
    timeline = dana.get_by_role("list", name="Timeline, newest first")
    expect(timeline.get_by_role("link", name=f"PR #{number.group(1)}").first).to_be_visible()

    rui = sign_in(new_context(), "rui")
    rui.goto(change_url)
    rui.get_by_role("button", name="Approve").click()
    expect(rui.locator("main").get_by_role("status")).to_contain_text("Approved")
    expect(rui.get_by_role("button", name="Approve")).to_be_disabled()
    expect(rui.locator("#why-approve")).to_have_text("you already approved it")
    rui.get_by_role("button", name="Merge").click()
    expect(rui.locator("main").get_by_role("status")).to_contain_text("Merged")

    rui.goto(APP_PAGE)
    _wait_for_status(rui, "decommissioned")
    expect(rui.locator("#decommissioned")).to_contain_text("Decommissioned since")
    expect(rui.get_by_role("list", name="Actions")).to_have_count(0)  # nothing left to act on
    timeline = rui.get_by_role("list", name="Timeline, newest first")
    expect(timeline).to_contain_text("Decommissioned: its files left main")
    expect(timeline).to_contain_text("Merged")
    link = timeline.get_by_role("link", name=f"PR #{number.group(1)}").first
    expect(link).to_have_attribute("href", change_url.removeprefix(live_server.url))
    expect(rui.get_by_role("region", name="Open changes")).to_contain_text(
        "No open pull request touches it")
    assert serious_violations(rui) == []
    screenshot(rui, "application-decommissioned")

    rui.goto("/catalog?kind=applications")
    expect(rui.locator("main")).not_to_contain_text("payments/shop")
    rui.locator("main").get_by_label("Status").select_option("decommissioned")
    rui.locator("main").get_by_role("button", name="Search", exact=True).click()
    expect(rui.locator("main table")).to_contain_text("shop")
    screenshot(rui, "catalog-decommissioned-filter")

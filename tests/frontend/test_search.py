"""The header's search box in the browser: "/" focuses it, suggestions grouped by kind, arrow
keys and Enter open a hit; without JavaScript it is a GET form to the results page; axe finds
nothing serious on either."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.frontend.axe_check import serious_violations
from tests.frontend.conftest import LiveServer, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_keyboard_flow_from_any_page(new_context: Callable[[], BrowserContext]) -> None:
    page = sign_in(new_context(), "dana")
    page.goto("/changes")
    page.locator("main").click()  # focus outside any field, as after reading the page
    page.keyboard.press("/")
    box = page.get_by_role("combobox", name="Search teams, namespaces")
    expect(box).to_be_focused()
    page.keyboard.type("pay")
    suggestions = page.get_by_role("listbox", name="Suggestions")
    expect(suggestions).to_be_visible()
    teams = suggestions.get_by_role("group", name="Teams")
    expect(teams.get_by_role("option").first).to_contain_text("payments")
    expect(box).to_have_attribute("aria-expanded", "true")
    assert serious_violations(page) == []
    screenshot(page, "search-suggestions")

    page.keyboard.press("ArrowDown")
    first = suggestions.get_by_role("option").first
    expect(first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", first.get_attribute("id") or "")
    page.keyboard.press("Enter")
    page.wait_for_url("**/catalog/teams/payments")
    expect(page.get_by_role("heading", level=1)).to_contain_text("payments")

    # Templates too; ArrowUp from the box wraps to the last entry ("All results").
    page.keyboard.press("/")
    box.fill("tenant")
    templates = suggestions.get_by_role("group", name="Templates")
    expect(templates.get_by_role("option").first).to_contain_text("tenant")
    page.keyboard.press("ArrowUp")
    expect(suggestions.get_by_role("option").last).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Escape")
    expect(suggestions).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("ArrowDown")  # opens again
    expect(templates.get_by_role("option").first).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url("**/templates/tenant")

    # Enter with nothing highlighted: the results page.
    page.keyboard.press("/")
    box.fill("dev")
    expect(suggestions).to_be_visible()
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=dev")
    expect(page.get_by_role("heading", name="Environments")).to_be_visible()


def test_results_page_without_javascript(chromium_context_no_js: BrowserContext,
                                         new_context: Callable[[], BrowserContext]) -> None:
    page = sign_in(chromium_context_no_js, "dana")
    box = page.get_by_role("combobox", name="Search teams, namespaces")
    box.fill("payments")
    box.press("Enter")
    page.wait_for_url("**/search?q=payments")
    expect(page.get_by_role("heading", level=1)).to_have_text("Search")
    teams = page.get_by_role("region", name="Teams")
    expect(teams.get_by_role("link", name="payments")).to_have_attribute(
        "href", "/catalog/teams/payments")
    expect(box).to_have_value("payments")
    screenshot(page, "search-results")

    page.goto(f"/search?q={'x' * 101}")
    expect(page.locator("main")).to_contain_text("at most 100 characters")
    page.goto("/search?q=zzzz-nothing")
    expect(page.locator("main")).to_contain_text("Nothing matches")

    with_js = sign_in(new_context(), "dana")
    with_js.goto("/search?q=payments")
    assert serious_violations(with_js) == []


@pytest.fixture
def chromium_context_no_js(new_context: Callable[[], BrowserContext],
                           live_server: LiveServer) -> Iterator[BrowserContext]:
    context = new_context()
    browser = context.browser
    assert browser is not None
    no_js = browser.new_context(base_url=live_server.url, java_script_enabled=False,
                                viewport={"width": 1366, "height": 900})
    yield no_js
    no_js.close()

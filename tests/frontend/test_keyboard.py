"""Keyboard-only completion of the request form, and labelled controls on every form page."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.frontend.conftest import screenshot, sign_in, tab_to, unlabelled_controls

pytestmark = pytest.mark.browser


def test_request_form_by_keyboard_only(new_context: Callable[[], BrowserContext]) -> None:
    context = new_context()
    login = context.new_page()
    login.goto("/login")
    assert unlabelled_controls(login) == []
    page = sign_in(context, "dana")
    page.goto("/templates/tenant")
    assert unlabelled_controls(page) == []

    keys = page.keyboard
    tab_to(page, "#f-team")
    keys.press("ArrowDown")  # the only team stays selected
    tab_to(page, "#f-name")
    keys.type("kbd-app")
    tab_to(page, "#f-cost_center")
    keys.type("cc-7")
    tab_to(page, "#f-max_pods")
    keys.press("Control+a")
    keys.type("20")
    tab_to(page, "#f-allow_egress_world")
    keys.press("Space")
    expect(page.locator("#f-allow_egress_world")).to_be_checked()
    tab_to(page, "button.primary[type=submit]")  # not a row editor's buttons
    keys.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_contain_text("Preview")
    tab_to(page, "form[action$='/submit'] button")
    keys.press("Enter")
    expect(page).to_have_url(re.compile(r"/tasks/\d+$"))
    expect(page.get_by_role("link", name=re.compile("Open the change"))).to_be_visible()
    tab_to(page, "#task-result a")
    keys.press("Enter")
    expect(page).to_have_url(re.compile(r"/changes/\d+$"))
    expect(page.get_by_role("term").filter(has_text="max_pods")).to_have_count(1)
    expect(page.locator("dd", has_text="20").first).to_be_visible()

    # The catalog lists the requested namespace before anything is merged.
    page.goto("/catalog")
    assert unlabelled_controls(page) == []
    tab_to(page, "#c-q")
    keys.type("kbd")
    keys.press("Enter")
    row = page.get_by_role("row").filter(has_text="kbd-app")
    expect(row).to_contain_text("requested")
    screenshot(page, "catalog")

    # The environment page: catalog facts, Terraform units and jobs.
    page.goto("/catalog/environments/dev")
    expect(page.get_by_role("heading", level=1)).to_have_text("Environment dev")
    expect(page.get_by_role("heading", name="Terraform units")).to_be_visible()
    expect(page.get_by_role("heading", name="Capacity")).to_be_visible()
    screenshot(page, "environment")

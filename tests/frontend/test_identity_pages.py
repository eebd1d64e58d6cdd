"""Sign-in, the header, sign-out, the audit page and error pages, in a real browser."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.frontend.conftest import sign_in

pytestmark = pytest.mark.browser


def test_sign_in_header_sign_out_and_errors(new_context: Callable[[], BrowserContext]) -> None:
    page = new_context().new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill("wrong-password-here")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong username or password")

    page = sign_in(new_context(), "dana")
    header = page.locator("header.top")
    expect(header).to_contain_text("Signed in as Dana")
    expect(header.get_by_role("link", name="payments")).to_be_visible()
    expect(header.get_by_role("link", name="Audit")).to_have_count(0)  # not an admin

    page.goto("/audit")
    expect(page.get_by_role("heading", level=1)).to_contain_text("403")
    expect(page.locator("main")).to_contain_text("Next step")
    page.goto("/no/such/page")
    expect(page.get_by_role("heading", level=1)).to_contain_text("404")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/")
    expect(page.get_by_label("Username")).to_be_visible()  # the session is gone


def test_audit_log_for_admins(new_context: Callable[[], BrowserContext]) -> None:
    sign_in(new_context(), "dana")  # one more audited sign-in to find
    page = sign_in(new_context(), "ada")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    page.get_by_label("Actor").fill("dana")
    page.get_by_label("Action starts with").fill("auth.login")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr")
    expect(rows.first).to_contain_text("auth.login")
    for text in rows.all_inner_texts():
        assert "dana" in text
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute(
        "href", "/api/audit?actor=dana&action=auth.login&format=csv&limit=1000")

"""Issue 17 in the browser: roles come from git (a newcomer is told how to get a team, team pages
list owners and members), and a submitted form shows every error at once, in words."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect
from sqlmodel import Session, select

from portal.auth import service as auth_service
from portal.auth.models import User
from tests.conftest import PASSWORD
from tests.frontend.axe_check import serious_violations
from tests.frontend.conftest import LiveServer, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_team_page_lists_people_from_git_and_a_newcomer_may_request_a_team(
        new_context: Callable[[], BrowserContext], live_server: LiveServer) -> None:
    with Session(live_server.engine, expire_on_commit=False) as s:
        if not s.exec(select(User).where(User.username == "finn")).first():
            auth_service.create_user(s, username="finn", password=PASSWORD)
    finn = sign_in(new_context(), "finn")
    teams = finn.get_by_role("region", name="My teams", exact=True)
    expect(teams).to_contain_text("You belong to no team yet")
    expect(teams).to_contain_text("owners review, members develop")
    screenshot(finn, "home-no-team")
    teams.get_by_role("link", name="Request a new team").click()
    expect(finn.get_by_role("heading", level=1)).to_have_text("Request: Team")
    finn.get_by_role("textbox", name="Team name").fill("finn-squad")
    finn.get_by_role("textbox", name="Display name").fill("Finn's squad")
    finn.get_by_role("textbox", name="Cost centre").fill("cc-7")
    finn.get_by_role("combobox", name="Owners").fill("finn")
    finn.get_by_role("button", name="Preview the change").click()
    expect(finn.get_by_role("heading", level=1)).to_have_text("Preview: Team")
    expect(finn.locator("main")).to_contain_text("teams/finn-squad/team.yaml")
    expect(finn.locator("main")).to_contain_text("platform-admin")
    assert serious_violations(finn) == []
    screenshot(finn, "new-team-preview")

    dana = sign_in(new_context(), "dana")
    expect(dana.get_by_role("region", name="My teams", exact=True)).to_contain_text(
        "payments (developer)")
    dana.goto("/catalog/teams/payments")
    about = dana.get_by_role("region", name="About")
    expect(about).to_contain_text(re.compile(r"Owners \(reviewers\)\s*rui"))
    expect(about).to_contain_text(re.compile(r"Members \(developers\)\s*dana"))
    expect(about).to_contain_text("cc-payments")
    screenshot(dana, "team-page")


def test_a_submitted_form_shows_every_error_at_once_in_words(
        new_context: Callable[[], BrowserContext]) -> None:
    dev = sign_in(new_context(), "dana")
    dev.goto("/templates/tenant")
    dev.get_by_role("combobox", name="Team", exact=True).select_option("payments")
    dev.get_by_role("textbox", name="Name", exact=True).fill("Web_Shop")
    dev.get_by_role("textbox", name="Cost centre").fill("cc 42!")
    dev.get_by_role("button", name="Preview the change").click()
    summary = dev.locator("#form-error")
    expect(summary).to_contain_text("answers need a change")
    text = summary.inner_text()
    assert "name: must use lowercase letters, digits and '-'" in text
    assert "cost_center: must use letters, digits, '-', '_' and '.'" in text
    assert "pattern ^" not in text  # no regex shown to a person
    assert dev.locator("[aria-invalid=true]").count() >= 2
    assert serious_violations(dev) == []
    screenshot(dev, "form-all-errors")


def test_polish_gallery_words_favicon_and_no_overflow_at_1366(
        new_context: Callable[[], BrowserContext]) -> None:
    context = new_context()
    icon = context.request.get("/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    dev = sign_in(context, "dana")
    dev.goto("/templates")
    gallery = dev.locator("main").inner_text()
    assert "${{" not in gallery and "parameters." not in gallery
    assert "tenants/<team>/<team>-<name>" in gallery
    screenshot(dev, "gallery")
    dev.set_viewport_size({"width": 1366, "height": 900})
    for url in ("/catalog/environments/dev", "/catalog/teams/payments", "/catalog", "/"):
        dev.goto(url)
        width = dev.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 1366, (url, width)
    screenshot(dev, "environment-1366")

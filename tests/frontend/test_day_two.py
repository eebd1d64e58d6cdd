"""Day two in a real browser (issue 15): change a namespace's quota from its page; create a
team and an environment from their forms (their names are free text)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.frontend.conftest import sign_in

pytestmark = pytest.mark.browser


def test_change_a_quota_from_the_namespace_page(
        new_context: Callable[[], BrowserContext]) -> None:
    ada = sign_in(new_context(), "ada")
    ada.goto("/catalog/namespaces/platform/platform-tools")
    ada.get_by_role("link", name="Change", exact=True).click()
    expect(ada.get_by_role("heading", level=1)).to_have_text("Change: Tenant namespace")
    name = ada.get_by_role("textbox", name="Name", exact=True)
    expect(name).to_have_value("tools")
    expect(name).to_have_attribute("readonly", "")
    storage = ada.get_by_role("textbox", name="Storage quota")
    expect(storage).to_have_value("20Gi")
    storage.fill("25Gi")
    ada.get_by_role("button", name="Preview the change").click()
    expect(ada.get_by_role("heading", level=1)).to_have_text("Preview: Tenant namespace")
    files = ada.locator("main li code")
    expect(files).to_have_count(3)
    expect(ada.locator("main")).to_contain_text("change of an existing unit")
    ada.get_by_role("button", name="Submit the request").click()
    expect(ada).to_have_url(re.compile(r"/tasks/\d+$"))
    expect(ada.get_by_role("list", name="Step log")).to_contain_text("pull-request")


def test_create_a_team_and_an_environment_from_their_forms(
        new_context: Callable[[], BrowserContext]) -> None:
    ada = sign_in(new_context(), "ada")
    ada.goto("/templates/team")
    ada.get_by_role("textbox", name="Team name").fill("growth")
    ada.get_by_role("textbox", name="Display name").fill("Growth")
    ada.get_by_role("textbox", name="Cost centre").fill("cc-growth")
    ada.get_by_role("combobox", name="Owners").fill("rui")
    ada.get_by_role("button", name="Preview the change").click()
    expect(ada.get_by_role("heading", level=1)).to_have_text("Preview: Team")
    expect(ada.locator("main")).to_contain_text("teams/growth/team.yaml")

    ada.goto("/templates/environment")
    ada.get_by_role("textbox", name="Name", exact=True).fill("qa")
    ada.get_by_role("textbox", name="Region").fill("local")
    ada.get_by_role("button", name="Preview the change").click()
    expect(ada.get_by_role("heading", level=1)).to_have_text("Preview: Environment")
    expect(ada.locator("main")).to_contain_text("envs/qa/infra.yaml")

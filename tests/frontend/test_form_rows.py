"""Issue 17 "Forms" in the browser: lists and maps as row editors, references as choosers, and
the preview's cost and capacity per environment; with JavaScript and without it."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.frontend.axe_check import serious_violations
from tests.frontend.conftest import LiveServer, screenshot, sign_in, unlabelled_controls

pytestmark = pytest.mark.browser


def test_tenant_rows_and_the_preview_shows_cost_and_capacity(
        new_context: Callable[[], BrowserContext]) -> None:
    dana = sign_in(new_context(), "dana")
    dana.goto("/templates/tenant")
    dana.locator("main form").get_by_role("combobox", name="Team", exact=True) \
        .select_option("payments")
    dana.get_by_role("textbox", name="Name", exact=True).fill("shop")
    dana.get_by_role("textbox", name="Cost centre").fill("cc-shop")
    quotas = dana.get_by_role("group", name="Per-environment quota")
    # The map's key column chooses from the existing environments.
    quotas.get_by_role("combobox", name="Per-environment quota, Environment, row 1") \
        .select_option("dev")
    quotas.get_by_role("textbox", name="Per-environment quota, CPU, row 1").fill("2")
    quotas.get_by_role("textbox", name="Per-environment quota, Memory, row 1").fill("4Gi")
    rules = dana.get_by_role("group", name="HTTP allow rules (L7)")
    rules.get_by_role("textbox", name="From namespace, row 1").fill("payments-web")
    rules.get_by_role("textbox", name="Port, row 1").fill("8080")
    rules.get_by_role("combobox", name="Method, row 1").select_option("GET")
    rules.get_by_role("textbox", name="Path, row 1").fill("{{ cookiecutter.x }}")
    rules.get_by_role("textbox", name="Path, row 1").press("Tab")
    # Checked inline by the server as the cell is left: the message sits under the cell.
    expect(dana.locator("#f-http_allow-0-path-error")).to_contain_text("template marker")
    rules.get_by_role("button", name="Add a row to HTTP allow rules (L7)").click()
    rules.get_by_role("textbox", name="From namespace, row 2").fill("payments-api")
    rules.get_by_role("textbox", name="Port, row 2").fill("http")
    rules.get_by_role("combobox", name="Method, row 2").select_option("POST")
    rules.get_by_role("textbox", name="Path, row 2").fill("/orders")
    assert unlabelled_controls(dana) == []
    assert serious_violations(dana) == []
    screenshot(dana, "form-rows-tenant")
    dana.get_by_role("button", name="Preview the change").click()

    # Every refused row, each pointing at its cell.
    alert = dana.get_by_role("alert")
    expect(alert).to_contain_text("HTTP allow rules (L7), row 1, Path: must not contain the "
                                  "template marker")
    expect(alert).to_contain_text("HTTP allow rules (L7), row 2, Port: must be of type integer")
    path = rules.get_by_role("textbox", name="Path, row 1")
    expect(path).to_have_attribute("aria-invalid", "true")
    expect(path).to_have_value("{{ cookiecutter.x }}")  # kept for correction, never rendered
    alert.get_by_role("link", name=re.compile("row 1, Path")).click()
    expect(path).to_be_focused()
    assert serious_violations(dana) == []
    screenshot(dana, "form-rows-errors")

    path.fill("/api/v1")
    rules.get_by_role("textbox", name="Port, row 2").fill("9090")
    rules.get_by_role("button", name="Remove HTTP allow rules (L7) row 2").click()
    expect(rules.get_by_role("textbox", name="Path, row 2")).to_have_count(0)
    dana.get_by_role("button", name="Preview the change").click()
    expect(dana.get_by_role("heading", level=1)).to_have_text("Preview: Tenant namespace")
    costs = dana.get_by_role("region", name="Cost and capacity")
    dev = costs.get_by_role("row", name=re.compile(r"^dev"))
    # 2 cores x 6 + 4 GiB x 0.80 + 50 GiB x 0.08 (the dev tier of catalog/prices.yaml).
    expect(dev).to_contain_text("CPU 2, memory 4Gi, storage 50Gi")
    expect(dev).to_contain_text("19.20 EUR")
    expect(dev).to_contain_text(re.compile(r"CPU: \S+ left of 8"))
    expect(dev).to_contain_text(re.compile(r"memory: \S+ left of \S+"))
    files = dana.locator("pre.diff")
    expect(files.filter(has_text="payments-web").first).to_be_visible()
    assert serious_violations(dana) == []
    screenshot(dana, "form-rows-preview-cost")


def test_an_applications_namespace_follows_its_team(
        new_context: Callable[[], BrowserContext]) -> None:
    ada = sign_in(new_context(), "ada")  # a platform-admin chooses among every team
    ada.goto("/templates/application")
    form = ada.locator("main form")  # the header's search box is a combobox too
    team = form.get_by_role("combobox", name="Team", exact=True)
    namespace = form.get_by_role("combobox", name="Namespace")
    team.select_option("platform")
    namespace.select_option("tools")
    expect(namespace.locator('optgroup[label="payments"]')).to_be_hidden()
    team.select_option("payments")
    # The platform team's namespace is no longer offered, and the choice is cleared.
    expect(namespace).to_have_value("")
    expect(namespace.locator('optgroup[label="platform"]')).to_have_attribute("disabled", "")
    environment = form.get_by_role("combobox", name="Environment")
    expect(environment.locator("option")).to_contain_text(["dev"])
    assert serious_violations(ada) == []
    screenshot(ada, "form-chooser-namespace")


def test_team_people_rows_without_javascript(chromium: Browser, live_server: LiveServer) -> None:
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False,
                                   viewport={"width": 1280, "height": 900})
    try:
        context.set_default_timeout(15_000)
        ada = sign_in(context, "ada")
        ada.goto("/templates/team")
        ada.get_by_role("textbox", name="Team name").fill("people")
        ada.get_by_role("textbox", name="Display name").fill("People")
        ada.get_by_role("textbox", name="Cost centre").fill("cc-people")
        owners = ada.get_by_role("group", name="Owners")
        owners.get_by_role("combobox", name="Owners, row 1").fill("rui")
        # Known users are suggested (a datalist from the catalog service's users).
        for known in ("ada", "dana", "rui"):
            expect(ada.locator(f"datalist#f-owners-users option[value={known}]")).to_have_count(1)
        owners.get_by_role("button", name="Add a row to Owners").click()  # a round trip
        owners = ada.get_by_role("group", name="Owners")
        expect(owners.get_by_role("combobox", name="Owners, row 1")).to_have_value("rui")
        owners.get_by_role("combobox", name="Owners, row 2").fill("dana")
        ada.get_by_role("group", name="Members").get_by_role(
            "combobox", name="Members, row 1").fill("rui")
        ada.get_by_role("button", name="Preview the change").click()
        expect(ada.get_by_role("heading", level=1)).to_have_text("Preview: Team")
        team_yaml = ada.locator("pre.diff").first
        expect(ada.locator("main")).to_contain_text("teams/people/team.yaml")
        expect(team_yaml).to_be_visible()
        expect(ada.locator("main")).to_contain_text(re.compile(r"owners:\s*- rui\s*- dana"))
        screenshot(ada, "form-rows-no-js-preview")
    finally:
        context.close()

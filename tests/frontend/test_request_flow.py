"""The journey of issue 8 in a real browser: a developer requests a tenant through the form,
a reviewer approves and merges it, and the namespace shows up committed (no cluster is connected
here, so not deployed) with its timeline."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.frontend.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def field_error(page: Page, control: Locator) -> str:
    """The error text the control points at through aria-describedby."""
    ids = (control.get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"#{i}.field-error").inner_text() for i in ids
                    if page.locator(f"#{i}.field-error").count())


def test_request_review_merge_and_follow(new_context: Callable[[], BrowserContext]) -> None:
    dev = sign_in(new_context(), "dana")
    screenshot(dev, "home")
    dev.get_by_role("navigation", name="Main").get_by_role("link", name="Request").click()
    dev.get_by_role("link", name="Request a Tenant namespace").click()
    expect(dev.get_by_role("heading", level=1)).to_have_text("Request: Tenant namespace")

    # Every control of the form has an accessible name.
    unnamed = dev.evaluate("""() => Array.from(document.querySelectorAll(
        'main input:not([type=hidden]), main select, main textarea'))
        .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
        .map(el => el.name)""")
    assert unnamed == []

    dev.get_by_role("combobox", name="Team", exact=True).select_option("payments")
    name = dev.get_by_role("textbox", name="Name", exact=True)
    name.fill("Web_Shop")
    # Leaving the field sends it to the server, which judges it.
    dev.get_by_role("textbox", name="Cost centre").fill("cc-42")
    expect(name).to_have_attribute("aria-invalid", "true")
    assert ("must use lowercase letters, digits and '-', starting and ending with a letter or "
            "digit") in field_error(dev, name)  # in words, not a regex
    screenshot(dev, "form")

    name.fill("web-shop")
    expect(name).not_to_have_attribute("aria-invalid", "true")
    assert field_error(dev, name) == ""
    dev.get_by_role("button", name="Preview the change").click()

    expect(dev.get_by_role("heading", level=1)).to_have_text("Preview: Tenant namespace")
    expect(dev.locator("main")).to_contain_text("tenants/payments/payments-web-shop")
    expect(dev.get_by_role("table", name="Check results")).to_be_visible()
    assert dev.locator("h3", has_text="namespace").count() >= 1
    dev.get_by_role("button", name="Submit the request").click()

    expect(dev).to_have_url(re.compile(r"/tasks/\d+$"))
    log = dev.get_by_role("list", name="Step log")
    expect(log).to_contain_text("pull-request")
    expect(dev.locator("#task-banner")).to_contain_text("checks passed")
    dev.get_by_role("link", name=re.compile("Open the change")).click()
    expect(dev).to_have_url(re.compile(r"/changes/\d+$"))
    change_url = dev.url
    expect(dev.get_by_role("heading", level=1)).to_contain_text("web-shop")
    # The author may not approve: the button is disabled, the four-eyes rule beside it.
    expect(dev.get_by_role("button", name="Approve")).to_be_disabled()
    expect(dev.locator("#why-approve")).to_contain_text("four-eyes")
    expect(dev.locator("#routing")).to_contain_text("approval from a member of team `payments`")

    reviewer = sign_in(new_context(), "rui")
    reviewer.goto(change_url)
    namespace_diff = reviewer.locator("pre.diff").filter(has_text="kind: Namespace")
    expect(namespace_diff).to_have_count(1)
    expect(namespace_diff.locator(".key").first).to_be_visible()  # highlighted server-side
    screenshot(reviewer, "change")
    reviewer.get_by_role("button", name="Approve").click()
    expect(reviewer.locator("main").get_by_role("status")).to_contain_text("Approved")
    reviewer.get_by_role("button", name="Merge").click()
    expect(reviewer.locator("main").get_by_role("status")).to_contain_text("Merged")
    reviewer.get_by_role("link", name="follow it in the catalog").click()
    expect(reviewer).to_have_url(re.compile(r"/catalog/namespaces/payments/[a-z-]*web-shop$"))

    # The in-process reconciler applies the merge; the page shows it once it has.
    status = reviewer.get_by_role("group", name="Status")
    deadline = time.monotonic() + 60
    # No cluster is connected in this harness: ArgoCD is skipped, so the namespace is in git but
    # not deployed, and the page says so instead of a green `applied`.
    while "committed, not deployed" not in (status.all_inner_texts() or [""])[0]:
        assert time.monotonic() < deadline, reviewer.locator("main").inner_text()
        reviewer.wait_for_timeout(500)
        reviewer.reload()
    expect(reviewer.locator("#not-deployed")).to_contain_text(
        "Committed, not deployed — no cluster connected")
    assert "applied" not in status.inner_text()
    timeline = reviewer.get_by_role("list", name="Timeline, newest first")
    for step in ("Pull request opened", "Checks finished", "Approved", "Merged"):
        expect(timeline).to_contain_text(step)
    expect(timeline).to_contain_text("by rui")
    expect(reviewer.get_by_role("table", name="Quota per environment")).to_contain_text("dev")
    screenshot(reviewer, "namespace")


@pytest.mark.checks_after_pr
def test_the_task_page_shows_pending_checks_until_the_worker_reports_them(
        new_context: Callable[[], BrowserContext], monkeypatch: pytest.MonkeyPatch) -> None:
    # The server's in-process worker runs the PR's checks; hold them until the page has shown
    # them pending, so the test sees both states whatever the machine's speed.
    from scaffolder import pr_checks

    release = threading.Event()
    real = pr_checks.deferred_checks

    def held(*args: Any, **kwargs: Any) -> Any:
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(pr_checks, "deferred_checks", held)
    dev = sign_in(new_context(), "dana")
    dev.goto("/templates/tenant")
    dev.get_by_role("combobox", name="Team", exact=True).select_option("payments")
    dev.get_by_role("textbox", name="Name", exact=True).fill("slow-checks")
    dev.get_by_role("textbox", name="Cost centre").fill("cc-7")
    dev.get_by_role("button", name="Preview the change").click()
    dev.get_by_role("button", name="Submit the request").click()
    expect(dev).to_have_url(re.compile(r"/tasks/\d+$"))
    banner = dev.locator("#task-banner")
    expect(banner).to_contain_text("checks still running: manifests, kustomize, policies, "
                                   "capacity")
    checks = dev.get_by_role("list", name="Checks")
    expect(checks.locator("li[data-check=kustomize] .badge")).to_have_text("pending")
    expect(checks.locator("li[data-check=collisions] .badge")).to_have_text("success")
    release.set()
    # The page refreshes itself until the worker has reported them (capacity depends on what
    # the other tests of this shared server requested in dev: green or red, no longer pending).
    expect(banner).not_to_contain_text("still running", timeout=30_000)
    expect(banner).to_contain_text(re.compile(r"checks passed|checks failed: capacity$|"
                                              r"checks failed: capacity\."))
    for name in ("manifests", "kustomize", "policies"):
        expect(checks.locator(f"li[data-check={name}] .badge")).to_have_text("success")
    expect(checks.locator("li[data-check=capacity] .badge")).not_to_have_text("pending")

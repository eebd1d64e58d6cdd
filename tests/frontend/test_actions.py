"""Actions people cannot use are disabled with the reason (issue 17), computed by the rules the
POSTs apply; every PR number links to its change; entity pages list their open changes; the
environment page offers "Uninstall" (`installed: false`, issue 15). Plain HTTP, no browser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import bearer
from tests.frontend.conftest import LiveServer

NAMESPACE = "/catalog/namespaces/platform/platform-tools"


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[Callable[[str], httpx.Client]]:
    clients: list[httpx.Client] = []

    def as_user(username: str) -> httpx.Client:
        c = httpx.Client(base_url=live_server.url, timeout=60,
                         headers={"accept": "text/html", **bearer(live_server.engine, username)})
        clients.append(c)
        return c

    yield as_user
    for c in clients:
        c.close()


def _button(html: str, label: str) -> str:
    found = re.search(rf"<button[^>]*>{label}</button>", html)
    assert found, label
    return found.group(0)


def _why(html: str, name: str) -> str:
    found = re.search(rf'id="why-{name}">([^<]*)<', html)
    return found.group(1) if found else ""


def test_entity_actions_are_disabled_with_the_reason_the_post_gives(
        client: Callable[[str], httpx.Client]) -> None:
    outsider = client("dana").get(NAMESPACE).text  # dana is in team payments only
    assert "disabled" in _button(outsider, "Change") and "disabled" in _button(outsider, "Remove")
    assert _why(outsider, "change") == "you are not a member of team `platform`"
    assert _why(outsider, "remove") == "you are not a member of team `platform`"
    refused = client("dana").post("/decommission",
                                  data={"unit": "tenants/platform/platform-tools"})
    assert refused.status_code == 403 and "you are not a member of team `platform`" in refused.text

    admin = client("ada").get(NAMESPACE).text
    assert "disabled" not in _button(admin, "Remove") and not _why(admin, "remove")
    assert 'href="/change?unit=tenants/platform/platform-tools"' in admin
    # A team with namespaces: Remove disabled naming them (the decommission refusal's words).
    team = client("ada").get("/catalog/teams/platform").text
    assert "disabled" in _button(team, "Remove")
    assert _why(team, "remove").startswith("team:platform still has dependants")
    assert "namespace:platform/platform-tools" in _why(team, "remove")


def test_environment_page_offers_uninstall_as_a_change_to_installed_false(
        client: Callable[[str], httpx.Client]) -> None:
    page = client("ada").get("/catalog/environments/dev").text
    assert 'action="/decommission"' not in page
    # dev still runs the platform's namespace: disabled with the refusal the form would give.
    assert "disabled" in _button(page, "Uninstall")
    assert _why(page, "uninstall").startswith("environment:dev still has dependants")
    assert "namespace:platform/platform-tools" in _why(page, "uninstall")
    form = client("ada").get("/change", params={"unit": "envs/dev", "installed": "false"}).text
    box = re.search(r'<input[^>]*name="installed"[^>]*>', form)
    assert box and "checked" not in box.group(0)  # pre-set to false
    kept = client("ada").get("/change", params={"unit": "envs/dev"}).text
    box = re.search(r'<input[^>]*name="installed"[^>]*>', kept)
    assert box and "checked" in box.group(0)
    # Only a platform-admin requests environment changes: disabled for a developer, with why.
    dev = client("dana").get("/catalog/environments/dev").text
    assert "disabled" in _button(dev, "Uninstall")
    assert _why(dev, "uninstall") == "only a platform-admin requests environment changes"
    bad = client("ada").get("/change", params={"unit": "envs/dev", "installed": "maybe"})
    assert bad.status_code == 422 and "installed" in bad.text


def test_promote_is_disabled_for_someone_outside_the_team(
        client: Callable[[str], httpx.Client], live_server: LiveServer) -> None:
    from sqlmodel import Session, select

    from portal.auth import service as auth_service
    from portal.auth.models import User
    from tests.conftest import PASSWORD
    from tests.frontend.test_remove_application import merged_application

    merged_application(live_server, "cart")
    with Session(live_server.engine, expire_on_commit=False) as s:
        if not s.exec(select(User).where(User.username == "olga")).first():
            auth_service.create_user(s, username="olga", password=PASSWORD)
    member = client("dana").get("/catalog/applications/payments/cart").text
    assert "disabled" not in _button(member, "Promote") and not _why(member, "promote")
    outsider = client("olga").get("/catalog/applications/payments/cart").text
    assert "disabled" in _button(outsider, "Promote")
    assert _why(outsider, "promote") == "you are not a member of team `payments`"
    refused = client("olga").post("/catalog/applications/payments/cart/promote",
                                  data={"from": "dev", "to": "dev"})
    assert refused.status_code == 403 and "you are not a member of team `payments`" in refused.text

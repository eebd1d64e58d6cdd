"""Filters, search and keyset paging: every entity exactly once across pages, both databases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from catalog import service
from gitops.gitreader import GitReader
from tests.catalog import gitops

TEAMS, TENANTS = 3, 15


def _envs(j: int) -> dict[str, None]:
    envs = {"dev": None}
    if j % 2 == 0:
        envs["stage"] = None
    if j % 3 == 0:
        envs["prod"] = None
    return envs


def _pages(client: TestClient, headers: dict[str, str], path: str,
           on_page: Callable[[int], None] | None = None, **params: object) -> list[str]:
    keys: list[str] = []
    cursor = None
    page = 0
    while True:
        query = {**params, "limit": 4, **({"cursor": cursor} if cursor else {})}
        body = client.get(path, params=query, headers=headers).json()
        keys += [item["key"] for item in body["items"]]
        cursor = body["next_cursor"]
        page += 1
        if on_page:
            on_page(page)
        if cursor is None:
            return keys


def test_filters_search_and_cursor_paging(tmp_path: Path, engine: Engine,
                                          app_client: TestClient, make_user: Callable[..., object],
                                          auth_headers: Callable[[str], dict[str, str]]) -> None:
    repo = gitops.Repo(tmp_path / "many.git")
    files: dict[str, str] = {}
    files.update(gitops.environment("dev", "dev"))
    files.update(gitops.environment("stage", "staging"))
    files.update(gitops.environment("prod", "prod"))
    for i in range(TEAMS):
        files.update(gitops.team(f"t{i}"))
        for j in range(TENANTS):
            files.update(gitops.tenant(f"t{i}", f"t{i}-ns{j:02d}", _envs(j)))
    repo.commit(files)
    with Session(engine) as s:
        service.reindex(s, forge=GitReader(repo.git_dir))
        for i in range(TEAMS):
            service.set_status(s, entity=f"namespace:t{i}/t{i}-ns03", status="applied")
        s.commit()
    make_user("pat")
    headers = auth_headers("pat")
    every = sorted(f"namespace:t{i}/t{i}-ns{j:02d}" for i in range(TEAMS)
                   for j in range(TENANTS))

    # Rows written between pages (a PR opening, a new tenant) never repeat or drop old ones.
    written: list[str] = []

    def write_between(page: int) -> None:
        written.append(f"namespace:t1/aa-new-{page}")
        with Session(engine) as s:
            service.set_status(s, entity=written[-1], status="requested", commit=True)

    keys = _pages(app_client, headers, "/api/catalog/namespaces", on_page=write_between)
    old = [k for k in keys if "aa-new" not in k]
    assert old == every  # each exactly once, in key order
    assert len(keys) == len(set(keys))

    def expect(params: dict[str, object], wanted: list[str]) -> None:
        got = _pages(app_client, headers, "/api/catalog/namespaces", **params)
        assert got == sorted(wanted), params

    expect({"owner": "t2"}, [k for k in every if k.startswith("namespace:t2/")])
    expect({"owner": "group:default/t0"},
           [k for k in every if k.startswith("namespace:t0/")])
    expect({"env": "prod"}, [k for k in every if int(k[-2:]) % 3 == 0])
    expect({"env": "stage", "owner": "t1"},
           [k for k in every if k.startswith("namespace:t1/") and int(k[-2:]) % 2 == 0])
    expect({"q": "NS1"}, [k for k in every if k[-2] == "1"])
    expect({"q": "100%"}, [])
    expect({"status": "applied"}, [f"namespace:t{i}/t{i}-ns03" for i in range(TEAMS)])
    expect({"status": "requested"}, written)
    teams = _pages(app_client, headers, "/api/catalog/teams", env="prod")
    assert teams == ["team:t0", "team:t1", "team:t2"]
    envs = _pages(app_client, headers, "/api/catalog/environments")
    assert envs == ["environment:dev", "environment:prod", "environment:stage"]

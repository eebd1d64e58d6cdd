"""The catalog job indexes a merge's paths as they are on main now: a merge learned late (the
poller after a missed webhook) never brings back an entity a later merge removed. Real git,
both databases."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from catalog import service as catalog_service
from catalog.models import Entity
from gitops.forges.base import MergeEvent
from gitops.forges.local import LocalForge
from gitops.git import seed_repository
from portal import db
from reconciler import service
from reconciler.worker import Worker
from tests.conftest import REPO_ROOT, make_settings
from tests.reconciler.conftest import drain, jobs_of, push

TEAM = """apiVersion: caas.io/v1
kind: Team
metadata:
  name: shop
spec:
  keycloakGroup: team-shop
  owners: [alice]
"""


def _status(engine: object, key: str) -> tuple[str, bool] | None:
    with Session(engine) as session:  # type: ignore[arg-type]
        row = session.exec(select(Entity).where(Entity.key == key)).first()
        return (row.status, row.on_main) if row else None


def test_a_late_merge_event_does_not_revive_what_a_later_merge_removed(
        tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, worker_backoff_s=0.01)
    engine = db.make_engine(settings)
    seed_repository(settings.resolved_gitops_repo, REPO_ROOT / "gitops-skeleton")
    forge = LocalForge(settings, engine)
    with Session(engine) as session:
        catalog_service.reindex(session, forge=forge)
    files = {"teams/shop/team.yaml": TEAM,
             "teams/shop/.caas-answers.yaml": "template: team\nanswers: {team: shop}\n"}
    worker = Worker(settings, engine, forge)

    def merged(before: str, commit: str) -> None:
        with Session(engine) as session:
            service.record_merge_event(session, event=MergeEvent(commit=commit, before=before))
        drain(worker)

    merged(*push(forge, files, message="team shop"))
    assert _status(engine, "team:shop") == ("committed", True)  # keycloak skipped
    # An edit whose webhook is missed, then the decommission, learned at once.
    late = push(forge, {"teams/shop/team.yaml": TEAM.replace("[alice]", "[alice, bob]")},
                message="owners")
    merged(*push(forge, dict.fromkeys(files), message="decommission shop"))
    assert _status(engine, "team:shop") == ("decommissioned", False)
    # The poller finds the missed merge later: the catalog follows main, not history.
    merged(*late)
    assert jobs_of(engine, late[1])["catalog"].state == "succeeded"
    assert _status(engine, "team:shop") == ("decommissioned", False)
    engine.dispose()

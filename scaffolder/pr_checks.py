"""The checks a pull request reports after it opens: the check lifecycle of an open change.

A request answers as soon as its pull request exists. Before that, synchronously, it validates
the answers, checks the identity boundary, reserves the unit, renders, runs the cheap
name-bound checks (``checks_runner.immediate_checks``: collisions, an upgrade's conflicts)
and opens the PR. The expensive checks (``checks_runner.DEFERRED``: manifests, kustomize,
policies, capacity) are stored and reported ``pending`` on the PR's head, and a durable job
computes them afterwards:

- ``pending()``: the placeholder results a new PR carries (state ``pending``);
- ``queue(session, *, forge, number, sha)``: the pending statuses, and one ``pr_checks`` job in
  the reconciler's queue (``reconciler.service.request_pr_checks``: keyed by head commit and PR
  number, claimed with a lease, retried with backoff, taken over from a worker that died), so a
  killed process loses no check. A new head (a push to the branch: GitHub's ``synchronize``
  delivery, ``reconciler.webhooks``) queues its own job, which marks the change pending again;
  the old head's job finds itself stale and stores nothing;
- ``run(session, *, forge, number, sha)``: the job's body. The checks of ``sha`` rebuilt from
  git (``head_render``: the unit's folder and every changed file at the head, the environments'
  ``infra.yaml`` there), evaluated (``checks_runner.deferred_checks``), stored on the change and
  published as ``caas/<check>`` statuses (``merge_gate.store_checks``). Nothing is stored when
  the change is no longer open or its head moved on (statuses are per commit). A retry after a
  crash writes the same results: the local forge keeps one row per check, GitHub's status
  write skips a context that already says the same, and the change's timeline gets
  ``checks.finished`` only when pending results were replaced.

Merging waits for them: ``review.merge_decision`` refuses while a check is ``pending``
("checks still running: …") and the forge's merge requires every status green; the
main-dependent checks run again at merge (``merge_gate.recheck_change``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from catalog import service as catalog_service
from gitops import layout
from gitops.forges.base import Forge
from reconciler import service as reconciler_service
from scaffolder import merge_checks, merge_gate
from scaffolder.changeset import load_yaml
from scaffolder.checks_runner import DEFERRED, deferred_checks
from scaffolder.models import Change, CheckResult

PENDING = "pending"
PENDING_SUMMARY = "running: reported here once it finishes"
_UNIT_FOLDERS = ("tenants/", "applications/")


def pending() -> list[CheckResult]:
    return [CheckResult(name=name, state=PENDING, summary=PENDING_SUMMARY) for name in DEFERRED]


def running(checks: list[dict[str, Any]] | list[CheckResult]) -> list[str]:
    """Names of the deferred checks still running (state ``pending``; a promotion's
    ``approval`` gate is pending too, but waits for a person, not for a job)."""
    return [c.name for c in map(CheckResult.model_validate, checks)
            if c.state == PENDING and c.name in DEFERRED]


def queue(session: Session, *, forge: Forge, number: int, sha: str) -> None:
    """Report the deferred checks ``pending`` on PR ``number`` (its head ``sha``) and queue
    the job that computes them; commits."""
    session.commit()  # the forge writes through its own connection
    _report_pending(forge, number)
    reconciler_service.request_pr_checks(session, change_number=number, head_sha=sha)


def _report_pending(forge: Forge, number: int) -> None:
    forge.set_checks(number, [c.as_status() for c in pending()])


@dataclass(frozen=True)
class HeadRender:
    """What the deferred checks read, as a PR's head has it (``capacity.UnitRender``)."""

    target: str
    base_sha: str
    envs: list[str]
    env_docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    rendered: dict[str, bytes] = field(default_factory=dict)


def head_render(forge: Forge, change: Change, sha: str) -> HeadRender:
    """The files a request rendered, read back from commit ``sha``: every file the branch
    changed since its base, and the whole folder of each tenant or application it touches
    (an overlay builds only with its base)."""
    base = change.base_sha or ""
    changed = forge.changed_paths(base, sha)
    folders = {layout.unit_dir(k) for k in layout.keys_for_paths(changed)}
    folders = {f for f in folders | {change.unit_key} if f.startswith(_UNIT_FOLDERS)}
    rendered = forge.read_tree(sorted(folders), sha) if folders else {}
    for path in changed:
        if path not in rendered and (content := forge.read_file(path, sha)) is not None:
            rendered[path] = content
    env_docs = {env: load_yaml(forge.read_file(layout.infra_path(env), sha))
                for env in change.envs}
    return HeadRender(target=change.unit_key, base_sha=base, envs=list(change.envs),
                      env_docs=env_docs, rendered=rendered)


def _open_change(session: Session, number: int) -> Change | None:
    return session.exec(select(Change).where(Change.number == number,
                                             col(Change.status).in_(merge_gate.OPEN))
                        .order_by(col(Change.id).desc())).first()


def run(session: Session, *, forge: Forge, number: int, sha: str) -> str:
    """The deferred checks of PR ``number`` at head ``sha``, stored and reported; returns what
    was done (see the module docstring)."""
    change = _open_change(session, number)
    if change is None:
        return f"change #{number} is not open: nothing to check"
    head = forge.get_change(number).head_sha
    if head != sha:
        return f"#{number} moved on to {head[:12]}; the checks of {sha[:12]} are stale"
    if change.head_sha != sha:  # pushed to on the forge: this head's checks start pending
        change.head_sha = sha
        change.checks = merge_checks.merged_into(change.checks, pending())
        change.checks_green = False
        session.add(change)
        session.commit()
        _report_pending(forge, number)
    results = deferred_checks(forge, head_render(forge, change, sha))
    session.refresh(change)
    if change.status not in merge_gate.OPEN or change.head_sha != sha:
        return f"change #{number} moved on while its checks ran; nothing stored"
    was_running = bool(running(change.checks))
    merge_gate.store_checks(session, forge=forge, change=change, fresh=results)
    failing = [c.name for c in results if c.state != "success"]
    if was_running and change.entity:
        catalog_service.record_timeline(
            session, entity=change.entity, event="checks.finished", actor="scaffolder",
            detail={"green": change.checks_green, "failing": failing, "commit": sha[:12]})
        session.commit()
    return (f"#{number} at {sha[:12]}: " + ("all green" if not failing else
                                             "failing: " + ", ".join(failing)))

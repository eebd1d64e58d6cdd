"""The gates of a promotion, each a check on its pull request (``caas/<gate>``):

- ``source-health`` — the source environment's Application (``app.<team>.<app>.<env>``) is
  ``Synced`` and ``Healthy`` in ArgoCD, and has been for at least the target tier's soak time
  (``CAAS_PROMOTION_SOAK_MINUTES``, e.g. ``dev=0,staging=15,prod=60``). "Since" is the later of
  ``status.health.lastTransitionTime`` and the end of the last sync
  (``status.operationState.finishedAt``, else the newest ``status.history[].deployedAt``) — the
  fields of ArgoCD's Application CRD. Without a cluster, or when the cluster cannot be asked,
  or a time is missing, the gate is *unknown*: reported as ``pending`` (GitHub commit statuses
  know only error/failure/pending/success) with a summary starting ``unknown:``, and it blocks.
  A platform-admin may override it with a reason (``scaffolder.promotion.override``, audited);
- ``approval`` — the target tier's approval rule (``portal.auth.policy.required_approver``,
  the same routing as every change): ``pending`` until an approval by someone other than the
  author is on record (each approval passed ``can_approve`` for this tier when given);
- ``target-policies`` — the target environment's Gatekeeper constraints on main
  (``platform/policies``: no ``:latest`` or untagged image, only the allowed registries, …)
  evaluated with regopy on the Pod the promoted images would run in (``gitops.app_overlays.
  images``) in the target namespace, labelled ``caas.io/tier=<tier>`` so a Constraint may
  select a tier with ``labelSelector``; only the image constraints (``IMAGE_CONSTRAINTS``) count,
  the workload's other rules are Gatekeeper's at admission;
- ``source-statuses`` — optional per tier (``CAAS_PROMOTION_REQUIRED_STATUSES``, e.g.
  ``prod=ci/tests|ci/e2e``): each named commit status (context) is ``success`` on the source
  version's commit — the head of the pull request that put the source's current version on main
  (``scaffolder.promotion_matrix.source_change``, "by which PR" of the matrix), read through the
  forge (``Forge.get_change(number).checks``: GitHub's combined status and check runs of that
  commit; the local forge's stored checks of that PR). ``failure``/``error`` → red; ``pending``
  or absent → pending, and it blocks; a tier that requires none → green. A source version that
  reached main outside the portal has no known commit: pending, blocking, until a promotion or
  change through the portal writes the source again.

Gates are evaluated when the promotion opens and again, on current data, just before a merge
(``scaffolder.review.merge_change``) and after an approval, so a green gate never goes stale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from catalog import live_status
from gitops import app_overlays, object_names
from gitops.forges.base import Forge
from portal.auth import policy
from portal.errors import CaasError
from portal.settings import Settings
from scaffolder import checks_runner
from scaffolder.models import CheckResult

ACTION = "promote"  # Change.action of a promotion
HEALTH, APPROVAL, POLICIES = "source-health", "approval", "target-policies"
STATUSES = "source-statuses"
GATES = (HEALTH, APPROVAL, POLICIES, STATUSES)
OVERRIDABLE = frozenset({HEALTH})
# The constraint kinds that judge an image reference; the rest (limits, privileges, labels)
# judge the workload the chart renders, which Gatekeeper checks at admission in the cluster.
IMAGE_CONSTRAINTS = frozenset({"K8sImageTag", "K8sAllowedRegistries"})
UNKNOWN = "unknown"
TENANT = "tenant"  # Subject.kind of a tenant's promotion


@dataclass(frozen=True)
class Subject:
    """What the gates judge: the application, both environments, the target tier and overlay."""

    team: str
    app: str
    source: str
    target: str
    tier: policy.Tier
    source_legacy: bool
    target_doc: Mapping[str, Any]
    author: str
    source_pr: int | None = None  # the PR that put the source's version on main
    kind: str = "application"  # or TENANT (scaffolder.promotion_tenant)
    health_names: tuple[str, ...] = ()  # a tenant: the namespace's Applications in the source


def tenant_subject(record: Mapping[str, Any], *, tier: policy.Tier,
                   author: str) -> Subject:
    """What the gates judge for a tenant's promotion (``record``: the change's ``promotion``,
    written by ``scaffolder.promotion_tenant``)."""
    names, pr = record.get("health_names"), record.get("source_pr")
    return Subject(
        team=str(record["team"]), app=str(record["app"]), source=str(record["from"]),
        target=str(record["to"]), tier=tier, source_legacy=False, target_doc={},
        author=author, source_pr=pr if isinstance(pr, int) and not isinstance(pr, bool)
        else None, kind=TENANT,
        health_names=tuple(str(n) for n in names) if isinstance(names, list) else ())


def soak(settings: Settings, tier: str) -> timedelta:
    """The soak time of ``tier`` from ``promotion_soak_minutes``; an unlisted tier needs the
    longest listed one (a missing entry never buys a shorter wait)."""
    minutes: dict[str, int] = {}
    for part in settings.promotion_soak_minutes.split(","):
        name, _, value = part.partition("=")
        if name and value.isdigit():
            minutes[name] = int(value)
    return timedelta(minutes=minutes.get(tier, max(minutes.values(), default=0)))


def required_statuses(settings: Settings, tier: str) -> list[str]:
    """The contexts ``promotion_required_statuses`` requires for ``tier`` (none when unlisted:
    the gate is optional)."""
    for part in settings.promotion_required_statuses.split(","):
        name, _, value = part.partition("=")
        if name.strip() == tier:
            return [c.strip() for c in value.split("|") if c.strip()]
    return []


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _unknown(why: str) -> CheckResult:
    return CheckResult(name=HEALTH, state="pending", summary=f"{UNKNOWN}: {why}"[:300],
                       details=["a platform-admin may override this gate with a reason"])


def source_health(settings: Settings, subject: Subject, *, now: datetime,
                  override: Mapping[str, Any] | None = None) -> CheckResult:
    """The ``source-health`` gate (see the module doc)."""
    if override:
        return CheckResult(name=HEALTH, state="success",
                           summary=f"overridden by {override.get('by')}: "
                           f"{override.get('reason')}"[:300],
                           details=[f"at {override.get('at')}"])
    names = subject.health_names or (object_names.team_application(
        subject.team, subject.app, None if subject.source_legacy else subject.source),)
    if settings.kubeconfig is None:
        return _unknown(f"no cluster connected, so the health of {', '.join(names)} cannot "
                        "be read (CAAS_KUBECONFIG)")
    from catalog.live import LiveStatus  # only with a kubeconfig (catalog.live_status's rule)

    status = LiveStatus.from_settings(settings)
    results = [_health_of(status, name, subject, need=soak(settings, subject.tier.value),
                          now=now) for name in names]
    for state in ("failure", "pending"):  # the worst Application decides
        worst = next((r for r in results if r.state == state), None)
        if worst is not None:
            return worst
    return CheckResult(name=HEALTH, state="success",
                       summary="; ".join(r.summary for r in results)[:300])


def _health_of(status: Any, name: str, subject: Subject, *, need: timedelta,
               now: datetime) -> CheckResult:
    """One Application of the source: Synced and Healthy for at least ``need``."""
    live = status.application(name)
    if not live.connected:
        return _unknown(f"{name}: {live.reason or live_status.NOT_CONNECTED}")
    if not live.found:
        return CheckResult(name=HEALTH, state="failure",
                           summary=f"{name} does not exist in ArgoCD")
    if live.sync != "Synced" or live.health != "Healthy":
        return CheckResult(name=HEALTH, state="failure",
                           summary=f"{name} is {live.sync or 'Unknown'} and "
                           f"{live.health or 'Unknown'}; promote from a Synced and Healthy "
                           f"{subject.source}")
    times = [t for t in (_time(live.health_since), _time(live.synced_at)) if t is not None]
    if need and not times:
        return _unknown(f"{name} reports no health or sync time; the {need} soak of "
                        f"`{subject.tier}` cannot be measured")
    since = max(times) if times else None
    if since is not None and now - since < need:
        return CheckResult(name=HEALTH, state="failure",
                           summary=f"{name} is Synced and Healthy only since "
                           f"{since.isoformat()}; `{subject.tier}` needs {need}",
                           details=[f"ready at {(since + need).isoformat()}"])
    return CheckResult(name=HEALTH, state="success",
                       summary=f"{name} Synced and Healthy"
                       + (f" since {since.isoformat()} (≥ {need})" if since else ""))


def approval(subject: Subject, approvals: Sequence[str]) -> CheckResult:
    """The ``approval`` gate: the target tier's rule, satisfied by an approval on record."""
    routing = policy.describe_routing(tier=subject.tier, touches_envs=False, team=subject.team)
    others = sorted({a for a in approvals if a != subject.author})
    if others:
        return CheckResult(name=APPROVAL, state="success",
                           summary=f"approved by {', '.join(others)}"[:300], details=[routing])
    return CheckResult(name=APPROVAL, state="pending", summary=routing[:300])


def target_policies(forge: Forge, subject: Subject, sha: str) -> CheckResult:
    """The ``target-policies`` gate: main's constraints on the Pod the promoted images run in.
    A tenant's promotion carries a quota, no image: the PR's own ``policies`` and ``capacity``
    checks judge the rendered overlay."""
    if subject.kind != "application":
        return CheckResult(name=POLICIES, state="success",
                           summary=f"{subject.target} ({subject.tier}): no container image to "
                           "judge; the rendered quota is judged by this PR's policies and "
                           "capacity checks")
    images = app_overlays.images(dict(subject.target_doc))
    if not images:
        return CheckResult(name=POLICIES, state="success",
                           summary="no container image named in the source (helm image "
                           "parameters, kustomize images)")
    spec = subject.target_doc.get("spec") or {}
    namespace = str((spec.get("destination") or {}).get("namespace") or "")
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{subject.app}-promoted", "namespace": namespace,
                        "labels": {"caas.io/tier": subject.tier.value,
                                   "caas.io/environment": subject.target}},
           "spec": {"containers": [{"name": f"image-{i}", "image": image}
                                   for i, image in enumerate(images)]}}
    result = checks_runner.check_policies(forge, sha, [pod], kinds=IMAGE_CONSTRAINTS)
    return CheckResult(name=POLICIES, state=result.state,
                       summary=f"{subject.target} ({subject.tier}): {result.summary}"[:300],
                       details=[f"images: {', '.join(images)}"[:500], *result.details])


def source_statuses(settings: Settings, forge: Forge, subject: Subject) -> CheckResult:
    """The ``source-statuses`` gate (see the module doc)."""
    required = required_statuses(settings, subject.tier.value)
    if not required:
        return CheckResult(name=STATUSES, state="success",
                           summary=f"no commit status required for `{subject.tier}` "
                           "(CAAS_PROMOTION_REQUIRED_STATUSES)")
    wanted = ", ".join(required)
    if subject.source_pr is None:
        return CheckResult(name=STATUSES, state="pending",
                           summary=f"{subject.source}'s version reached main outside the "
                           f"portal: no commit to read {wanted} from"[:300])
    try:
        info = forge.get_change(subject.source_pr)
    except CaasError as exc:
        return CheckResult(name=STATUSES, state="pending",
                           summary=f"the statuses of #{subject.source_pr} cannot be read now: "
                           f"{exc.message}"[:300])
    seen: dict[str, str] = {}
    for check in info.checks:  # GitHub's combined status keeps the newest per context
        seen.setdefault(check.name, check.state.value)
    states = {context: seen.get(context, "absent") for context in required}
    details = [f"{context}: {state}" for context, state in states.items()]
    where = f"on {info.head_sha[:12]} (#{info.number}, {subject.source}'s version)"
    red = [c for c, state in states.items() if state in ("failure", "error")]
    if red:
        return CheckResult(name=STATUSES, state="failure",
                           summary=f"{', '.join(red)} failed {where}"[:300], details=details)
    waiting = [c for c, state in states.items() if state != "success"]
    if waiting:
        return CheckResult(name=STATUSES, state="pending",
                           summary=f"waiting for {', '.join(waiting)} {where}"[:300],
                           details=details)
    return CheckResult(name=STATUSES, state="success",
                       summary=f"{wanted} succeeded {where}"[:300], details=details)


def evaluate(settings: Settings, forge: Forge, subject: Subject, *, sha: str,
             approvals: Sequence[str], overrides: Mapping[str, Any],
             now: datetime | None = None) -> list[CheckResult]:
    """Every gate, in ``GATES`` order."""
    moment = now or datetime.now(UTC)
    override = overrides.get(HEALTH)
    return [source_health(settings, subject, now=moment,
                          override=override if isinstance(override, Mapping) else None),
            approval(subject, approvals),
            target_policies(forge, subject, sha),
            source_statuses(settings, forge, subject)]

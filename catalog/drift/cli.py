"""``caas drift``: run the checks, then print the report as text or JSON (exit 1 on drift)."""

from __future__ import annotations

import json

from sqlmodel import Session

from catalog.drift import service
from catalog.drift.models import DriftReport, State
from gitops.forges.base import Forge
from portal.settings import Settings
from scaffolder.registry import Registry


def run(session: Session, *, settings: Settings, forge: Forge, registry: Registry,
        sides: list[str] | None) -> DriftReport:
    """Check ``sides`` (all when None) and report only them: the findings other sides'
    earlier runs stored neither print nor count for the exit code."""
    report = service.run(session, settings=settings, forge=forge, registry=registry,
                         sides=sides or None)
    if not sides:
        return report
    chosen = set(sides)
    return DriftReport(findings=[f for f in report.findings if f.side in chosen],
                       sides=[s for s in report.sides if s.side in chosen],
                       counts={k: n for k, n in report.counts.items()
                               if k.rpartition("/")[2] in chosen},
                       run=report.run)


def drifted(report: DriftReport) -> bool:
    """Any finding in state ``drift`` (an ``unknown`` alone is not drift)."""
    return any(f.state == State.drift for f in report.findings)


def render(report: DriftReport, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    lines = [f"{s.side:<9} {s.status} ({s.checked} checked at {s.commit[:12] or '-'}, "
             f"{s.seconds:.2f} s)" for s in sorted(report.sides, key=lambda s: s.side)]
    for f in report.findings:
        fix = f" [fix: {f.fix_label}]" if f.fix_label else ""
        lines.append(f"{f.state:<7} {f.side:<9} {f.entity}: {f.what}{fix}")
    drift = sum(1 for f in report.findings if f.state == State.drift)
    unknown = len(report.findings) - drift
    lines.append(f"{drift} drifted, {unknown} unknown")
    return "\n".join(lines) + "\n"

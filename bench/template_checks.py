"""Figures for the template pipeline's pieces (printed, never asserted).

Run: .venv/bin/python bench/template_checks.py [rounds]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cookiecutter.generate import generate_files
from ruamel.yaml import YAML

from scaffolder.checks.kustomize import build
from scaffolder.checks.manifests import load_documents, validate_manifest
from scaffolder.checks.policy import PolicySet
from scaffolder.parameters import ParameterContext, validate_answers
from scaffolder.render_pool import hook_scratch

ROOT = Path(__file__).resolve().parents[1]
TENANT = {
    "team": "payments",
    "name": "checkout",
    "cost_center": "cc-1",
    "environments": ["dev", "staging", "prod"],
}
CONTEXT = ParameterContext(
    teams=frozenset({"payments"}), environments=frozenset({"dev", "staging", "prod"})
)


def timed(label: str, rounds: int, action: Callable[[], object]) -> None:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    print(
        f"{label:<48} median {statistics.median(samples):8.2f} ms   p95 {p95:8.2f} ms"
        f"   (n={rounds})"
    )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    parameters = YAML(typ="safe").load((ROOT / "templates/tenant/template.yaml").read_text())[
        "spec"
    ]["parameters"]
    start = time.perf_counter()
    policies = PolicySet.from_directory(ROOT / "gitops-skeleton/platform/policies")
    elapsed = 1000 * (time.perf_counter() - start)
    print(f"{'compile 6 ConstraintTemplates (regopy)':<48} {elapsed:8.2f} ms")
    answers = validate_answers(parameters, TENANT, context=CONTEXT)
    with tempfile.TemporaryDirectory() as tmp:

        def render() -> Path:
            out = Path(tempfile.mkdtemp(dir=tmp))
            with hook_scratch(tmp):  # cookiecutter's hook runner leaves its script behind
                return Path(
                    generate_files(
                        repo_dir=str(ROOT / "templates/tenant"),
                        context={"cookiecutter": dict(answers)},
                        output_dir=str(out),
                        accept_hooks=True,
                    )
                )

        unit = render()
        built = build(unit / "envs" / "dev")
        objects = load_documents(built)
        print(
            f"tenant unit: {sum(1 for p in unit.rglob('*') if p.is_file())} files, "
            f"{len(objects)} objects per overlay, 3 overlays"
        )
        timed(
            "validate_answers (tenant)",
            rounds,
            lambda: validate_answers(parameters, TENANT, context=CONTEXT),
        )
        timed("render tenant (generate_files + hook)", rounds, render)
        timed("kubectl kustomize one overlay", rounds, lambda: build(unit / "envs" / "dev"))
        timed("load_documents of one built overlay", rounds, lambda: load_documents(built))
        timed(
            "validate_manifest, all objects of one overlay",
            rounds,
            lambda: [validate_manifest(o) for o in objects],
        )
        timed(
            "policies.evaluate, all objects of one overlay",
            rounds,
            lambda: [policies.evaluate(o) for o in objects],
        )


if __name__ == "__main__":
    main()

"""The Terraform runner: the real ``terraform`` CLI on one unit of one environment.

Each (environment, unit) gets its own working directory and local state under
``data_dir/terraform/<env>/<unit>/``; the module is copied in from
``terraform_modules_dir/<provider>/<unit>`` on every run so the state always meets the module of
the commit being applied. The runner writes its own CLI configuration (never the process's
``TF_CLI_CONFIG_FILE``), uses the provider mirror when one is configured, passes variables through
an ``*.auto.tfvars.json`` file (never the command line), and applies exactly the plan it showed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.redact import MASK, redact
from portal.settings import Settings
from reconciler import tfproc
from reconciler.errors import PermanentError, ReconcilerError, TemporaryError
from reconciler.tfdiag import failure_message, is_temporary
from reconciler.tfmodule import OVERRIDE_SUFFIX, module_interface
from reconciler.tfstate import StateSnapshot

Log = Callable[[str], None]
VARS_FILE = "caas.auto.tfvars.json"
PLAN_FILE = "caas.tfplan"
MAX_DETAIL = 1500
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_KEEP = {".terraform", ".terraform.lock.hcl", "terraform.tfstate", "terraform.tfstate.backup",
         VARS_FILE, PLAN_FILE}
_SKIP_COPY = shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*",
                                    "examples", "README.md", "*.tfplan")


def _discard(_line: str) -> None:
    """The default log: drop lines."""


class TerraformError(ReconcilerError):
    """A terraform command failed. ``temporary`` decides retry or fail (``reconciler.tfdiag``
    classifies); the message is the diagnostics' summary and detail."""

    code = "terraform_failed"
    temporary = False

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail

    @staticmethod
    def make(message: str, *, temporary: bool, detail: str = "",
             delay: float | None = None) -> TerraformError:
        if temporary:
            return TerraformTemporaryError(message, detail=detail, delay=delay)
        return TerraformPermanentError(message, detail=detail)


class TerraformTemporaryError(TerraformError, TemporaryError):
    temporary = True

    def __init__(self, message: str, *, detail: str = "", delay: float | None = None) -> None:
        TerraformError.__init__(self, message, detail=detail)
        self.delay = delay


class TerraformPermanentError(TerraformError, PermanentError):
    temporary = False


@dataclass(frozen=True)
class UnitRef:
    """One unit of one environment, and the provider whose module implements it."""

    env: str
    unit: str
    provider: str

    def __post_init__(self) -> None:
        for name in ("env", "unit", "provider"):
            if not _NAME.match(getattr(self, name)):
                raise TerraformError.make(f"bad {name} {getattr(self, name)!r}", temporary=False)


@dataclass(frozen=True)
class ResourceChange:
    address: str
    action: str  # create | update | delete | replace


@dataclass(frozen=True)
class PlanSummary:
    """What a plan would do; names and actions only, never attribute values."""

    add: int = 0
    change: int = 0
    destroy: int = 0
    resources: tuple[ResourceChange, ...] = ()
    outputs_changed: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.resources or self.outputs_changed)

    def to_dict(self) -> dict[str, Any]:
        return {"add": self.add, "change": self.change, "destroy": self.destroy,
                "resources": [{"address": r.address, "action": r.action}
                              for r in self.resources],
                "outputs_changed": list(self.outputs_changed)}

    @classmethod
    def from_plan_json(cls, plan: Mapping[str, Any]) -> PlanSummary:
        add = change = destroy = 0
        resources: list[ResourceChange] = []
        for item in plan.get("resource_changes") or []:
            actions = list(item.get("change", {}).get("actions", []))
            if actions in (["no-op"], ["read"]) or not actions:
                continue
            if "create" in actions and "delete" in actions:
                action, add, destroy = "replace", add + 1, destroy + 1
            elif actions == ["create"]:
                action, add = "create", add + 1
            elif actions == ["delete"]:
                action, destroy = "delete", destroy + 1
            else:
                action, change = "update", change + 1
            resources.append(ResourceChange(str(item["address"]), action))
        outputs = tuple(sorted(name for name, out in (plan.get("output_changes") or {}).items()
                               if out.get("actions") not in (["no-op"], None)))
        return cls(add, change, destroy, tuple(resources), outputs)


@dataclass(frozen=True)
class UnitOutputs:
    """A unit's outputs; ``values`` feed later units, ``public()`` is what may be shown."""

    values: dict[str, object] = field(default_factory=dict)
    sensitive: frozenset[str] = frozenset()

    def public(self) -> dict[str, object]:
        return {k: (MASK if k in self.sensitive else v) for k, v in self.values.items()}


class TerraformRunner:
    """Drives ``terraform`` for units; every method streams redacted lines to ``log``."""

    def __init__(self, settings: Settings, *, override_files: Mapping[str, str] | None = None,
                 extra_env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.root = (settings.data_dir / "terraform").resolve()
        # Test-only or site-specific ``*_override.tf`` files written into every working dir.
        self.override_files = dict(override_files or {})
        if any(not name.endswith(OVERRIDE_SUFFIX) or "/" in name for name in self.override_files):
            raise ValueError(f"override files must be named *{OVERRIDE_SUFFIX}")
        self.extra_env = dict(extra_env or {})
        self.timeout_s = settings.terraform_timeout_s
        self.lock_timeout_s = settings.terraform_lock_timeout_s

    # --- paths and configuration --------------------------------------------------------------
    def workdir(self, ref: UnitRef) -> Path:
        return self.root / ref.env / ref.unit

    def module_dir(self, ref: UnitRef) -> Path:
        return self.settings.terraform_modules_dir / ref.provider / ref.unit

    def cli_config(self) -> Path:
        """Write (once per content) and return the runner's own CLI configuration."""
        cache = self.root / "plugin-cache"
        cache.mkdir(parents=True, exist_ok=True)
        lines = [f"plugin_cache_dir = {json.dumps(str(cache))}", "disable_checkpoint = true",
                 "provider_installation {"]
        mirror = self.settings.terraform_plugin_mirror
        if mirror is not None:
            # Only the mirror: with no `direct` block Terraform cannot download anything.
            lines += ["  filesystem_mirror {", f"    path = {json.dumps(str(mirror.resolve()))}",
                      "  }"]
        else:
            lines += ["  direct {}"]
        text = "\n".join([*lines, "}", ""])
        path = self.root / "terraformrc"
        if not path.exists() or path.read_text() != text:
            tmp = path.with_suffix(f".{uuid.uuid4().hex}")
            tmp.write_text(text)
            tmp.replace(path)
        return path

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
        env.update({"TF_CLI_CONFIG_FILE": str(self.cli_config()), "CHECKPOINT_DISABLE": "1",
                    "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"})
        env.update(self.extra_env)
        return env

    # --- preparing a working directory -------------------------------------------------------
    def prepare(self, ref: UnitRef, variables: Mapping[str, object], *,
                workdir: Path | None = None) -> Path:
        """Copy the module in, check and write the variables; returns the working directory."""
        module = self.module_dir(ref)
        if not (module / "variables.tf").is_file():
            raise TerraformError.make(f"no module at {module}", temporary=False)
        interface = module_interface(module)
        unknown = sorted(set(variables) - set(interface.variables))
        missing = sorted(interface.required - set(variables))
        if unknown or missing:
            raise TerraformError.make(f"{ref.provider}/{ref.unit}: variables not declared "
                                      f"{unknown}, required but not passed {missing}",
                                      temporary=False)
        work = workdir or self.workdir(ref)
        work.mkdir(parents=True, exist_ok=True)
        for entry in work.iterdir():  # stale module files of an earlier commit
            if entry.name not in _KEEP:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        shutil.copytree(module, work, dirs_exist_ok=True, ignore=_SKIP_COPY)
        for name, text in self.override_files.items():
            (work / name).write_text(text)
        vars_path = work / VARS_FILE
        vars_path.write_text(json.dumps(dict(variables), indent=2, sort_keys=True, default=str))
        vars_path.chmod(0o600)  # may hold upstream outputs that are secrets
        return work

    def _init(self, work: Path, log: Log) -> None:
        digest = hashlib.sha256(self.cli_config().read_bytes())
        for path in sorted(work.glob("*.tf")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        marker = work / ".terraform" / "caas-init.sha256"
        if marker.exists() and marker.read_text() == digest.hexdigest():
            return  # same providers and modules as last time: init would change nothing
        self._run(work, ["init", "-input=false", "-json"], log)
        marker.parent.mkdir(exist_ok=True)
        marker.write_text(digest.hexdigest())

    # --- commands ----------------------------------------------------------------------------
    def plan(self, ref: UnitRef, variables: Mapping[str, object], *, destroy: bool = False,
             log: Log = _discard) -> PlanSummary:
        """``init`` + ``plan -out``; the saved plan waits in the working dir for ``apply``."""
        work = self.prepare(ref, variables)
        self._init(work, log)
        return self._plan(work, destroy=destroy, lock=True, log=log)

    def _plan(self, work: Path, *, destroy: bool, lock: bool, log: Log) -> PlanSummary:
        args = ["plan", "-input=false", "-json", f"-out={PLAN_FILE}"]
        args += [f"-lock-timeout={self.lock_timeout_s}s"] if lock else ["-lock=false"]
        self._run(work, [*args, "-destroy"] if destroy else args, log)
        shown = self._capture(work, ["show", "-json", "-no-color", PLAN_FILE])
        return PlanSummary.from_plan_json(json.loads(shown))

    def apply(self, ref: UnitRef, *, log: Log = _discard) -> UnitOutputs:
        """Apply the plan ``plan`` saved (never a fresh one), then read the outputs."""
        work = self.workdir(ref)
        if not (work / PLAN_FILE).is_file():
            raise TerraformError.make(f"{ref.env}/{ref.unit}: no saved plan to apply",
                                      temporary=False)
        try:
            self._run(work, ["apply", "-input=false", "-json",
                             f"-lock-timeout={self.lock_timeout_s}s", PLAN_FILE], log)
        finally:
            (work / PLAN_FILE).unlink(missing_ok=True)  # a plan is good for one apply only
        return self.outputs(ref)

    def outputs(self, ref: UnitRef, *, log: Log = _discard) -> UnitOutputs:
        """The unit's current outputs from its state (empty when never applied)."""
        work = self.workdir(ref)
        if not (work / "terraform.tfstate").exists():
            return UnitOutputs()
        raw: dict[str, dict[str, Any]] = json.loads(
            self._capture(work, ["output", "-json", "-no-color"]) or "{}")
        log(f"outputs of {ref.env}/{ref.unit}: {', '.join(sorted(raw)) or '(none)'}")
        return UnitOutputs({k: v.get("value") for k, v in raw.items()},
                           frozenset(k for k, v in raw.items() if v.get("sensitive")))

    def run(self, ref: UnitRef, variables: Mapping[str, object], *,
            log: Log = _discard) -> tuple[PlanSummary, UnitOutputs]:
        """Plan, apply when the plan changes anything, return the summary and the outputs.

        Re-running an applied unit plans no change and applies nothing (idempotent).
        """
        summary = self.plan(ref, variables, log=log)
        if not summary.has_changes:
            (self.workdir(ref) / PLAN_FILE).unlink(missing_ok=True)
            log(f"{ref.env}/{ref.unit}: no changes")
            return summary, self.outputs(ref)
        return summary, self.apply(ref, log=log)

    def destroy(self, ref: UnitRef, variables: Mapping[str, object], *,
                log: Log = _discard) -> PlanSummary:
        """``plan -destroy`` and apply it; a unit that was never applied is a no-op."""
        if not (self.workdir(ref) / "terraform.tfstate").exists():
            log(f"{ref.env}/{ref.unit}: nothing to destroy")
            return PlanSummary()
        summary = self.plan(ref, variables, destroy=True, log=log)
        self.apply(ref, log=log)
        return summary

    def plan_preview(self, ref: UnitRef, variables: Mapping[str, object], *,
                     destroy: bool = False, log: Log = _discard) -> PlanSummary:
        """Plan against a throw-away copy of the unit's state: nothing applied, nothing locked."""
        with self._scratch() as scratch:
            work = self.prepare(ref, variables, workdir=scratch)
            live = self.workdir(ref)
            for name in ("terraform.tfstate", ".terraform.lock.hcl"):
                if (live / name).is_file():
                    shutil.copy2(live / name, work / name)
            self._init(work, log)
            return self._plan(work, destroy=destroy, lock=False, log=log)

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        path = self.root / ".preview" / uuid.uuid4().hex
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    # --- process handling --------------------------------------------------------------------
    def settle(self, ref: UnitRef, *, log: Log = _discard) -> None:
        """Wait for a dead predecessor's terraform to leave the unit's working directory and
        remove what it left (``tfproc.settle``); a temporary error after
        ``terraform_orphan_wait_s`` (the job is retried later)."""
        try:
            tfproc.settle(self.workdir(ref), wait_s=self.settings.terraform_orphan_wait_s,
                          log=log)
        except tfproc.StillRunning as exc:
            raise TerraformError.make(f"{ref.env}/{ref.unit}: {exc}; retrying later",
                                      temporary=True, delay=30.0) from exc

    def state(self, ref: UnitRef) -> StateSnapshot:
        """What the unit's state holds now (``terraform state pull``); empty when never applied."""
        work = self.workdir(ref)
        if not (work / "terraform.tfstate").exists():
            return StateSnapshot()
        raw = self._capture(work, ["state", "pull"]).strip()
        return StateSnapshot.from_state(json.loads(raw)) if raw else StateSnapshot()

    def _command(self, work: Path, args: list[str]) -> list[str]:
        return [self.settings.terraform_bin, f"-chdir={work}", *args]

    def _run(self, work: Path, args: list[str], log: Log) -> None:
        """Run a ``-json`` command, streaming its messages (redacted) to ``log``; a failure is
        classified from its diagnostics (``reconciler.tfdiag``)."""
        try:
            done = tfproc.run_streamed(self._command(work, args), env=self._env(), work=work,
                                       command=args[0], timeout_s=self.timeout_s, log=log,
                                       redact=redact)
        except OSError as exc:
            raise TerraformError.make(f"cannot run {self.settings.terraform_bin}: {exc}",
                                      temporary=False) from exc
        if done.code == 0:
            return
        reason = "timed out and was interrupted" if done.timed_out else f"exit {done.code}"
        fallback = next((line for line in reversed(done.tail) if line.strip()), "no diagnostics")
        message = failure_message(done.diagnostics, fallback)
        raise TerraformError.make(
            f"terraform {args[0]} failed ({reason}): {message}",
            temporary=is_temporary(done.diagnostics, interrupted=done.timed_out or done.code < 0),
            detail="\n".join(done.tail))

    def _capture(self, work: Path, args: list[str]) -> str:
        """A read-only command's stdout; its failure is permanent unless it timed out."""
        try:
            code, out, err = tfproc.capture(self._command(work, args), env=self._env(),
                                            timeout_s=self.timeout_s)
        except OSError as exc:
            raise TerraformError.make(f"cannot run {self.settings.terraform_bin}: {exc}",
                                      temporary=False) from exc
        if code != 0:
            reason = "timed out" if code == -1 else f"exit {code}"
            text = " ".join(redact(err).split())[-MAX_DETAIL:]
            raise TerraformError.make(f"terraform {args[0]} failed ({reason}): {text}",
                                      temporary=code == -1, detail=redact(err))
        return out

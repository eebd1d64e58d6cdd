"""The Terraform runner with the real CLI, on tiny unit folders of built-in resources."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from portal.settings import Settings
from reconciler.terraform import (
    ResourceChange,
    TerraformError,
    TerraformPermanentError,
    TerraformRunner,
    TerraformTemporaryError,
    UnitRef,
)

pytestmark = pytest.mark.terraform

ALPHA = {
    "variables.tf": '''variable "name" {
  description = "A name."
  type        = string
}

variable "size" {
  description = "A size."
  type        = number
  default     = 1
}

variable "secret" {
  description = "A secret."
  type        = string
  default     = ""
  sensitive   = true
}
''',
    "main.tf": '''resource "terraform_data" "thing" {
  input = { name = var.name, size = var.size }
}

resource "terraform_data" "other" {
  triggers_replace = [var.name]
}
''',
    "outputs.tf": '''output "name" {
  value = terraform_data.thing.output.name
}

output "token" {
  value     = "tok-${var.secret}"
  sensitive = true
}
''',
}
BROKEN = {
    "variables.tf": 'variable "name" {\n  type = string\n}\n',
    "main.tf": 'resource "terraform_data" "x" {\n  input = var.nope\n}\n',
    "outputs.tf": "",
}
SLOW = {
    "variables.tf": "",
    "main.tf": 'resource "terraform_data" "x" {\n  provisioner "local-exec" {\n'
               '    command = "sleep 30"\n  }\n}\n',
    "outputs.tf": "",
}


def write_module(root: Path, name: str, files: dict[str, str]) -> None:
    folder = root / "tiny" / name
    folder.mkdir(parents=True, exist_ok=True)
    for filename, text in files.items():
        (folder / filename).write_text(text)


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("modules")
    for name, files in {"alpha": ALPHA, "broken": BROKEN, "slow": SLOW}.items():
        write_module(root, name, files)
    return root


@pytest.fixture
def runner(tmp_path: Path, modules: Path) -> TerraformRunner:
    settings = Settings.model_validate({"data_dir": tmp_path / ".caas",
                                        "terraform_modules_dir": modules,
                                        "terraform_lock_timeout_s": 0})
    return TerraformRunner(settings)


ALPHA_REF = UnitRef(env="dev", unit="alpha", provider="tiny")


class Lines(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


def test_plan_apply_outputs_and_idempotent_reapply(runner: TerraformRunner) -> None:
    log = Lines()
    variables = {"name": "one", "secret": "s3cr3t-value", "size": 2}
    summary = runner.plan(ALPHA_REF, variables, log=log)
    assert (summary.add, summary.change, summary.destroy) == (2, 0, 0)
    assert set(summary.resources) == {ResourceChange("terraform_data.thing", "create"),
                                      ResourceChange("terraform_data.other", "create")}
    assert summary.outputs_changed == ("name", "token")
    assert "s3cr3t-value" not in json.dumps(summary.to_dict())
    assert any("Plan: 2 to add" in line for line in log)

    outputs = runner.apply(ALPHA_REF, log=log)
    assert outputs.values == {"name": "one", "token": "tok-s3cr3t-value"}
    assert outputs.sensitive == {"token"}
    assert outputs.public() == {"name": "one", "token": "***"}
    assert not any("s3cr3t-value" in line for line in log)
    work = runner.workdir(ALPHA_REF)
    assert work == runner.root / "dev" / "alpha" and (work / "terraform.tfstate").is_file()
    assert (work / "caas.auto.tfvars.json").stat().st_mode & 0o077 == 0
    assert not (work / "caas.tfplan").exists()  # one plan, one apply

    again, outputs_again = runner.run(ALPHA_REF, variables, log=log)
    assert not again.has_changes and again.resources == ()
    assert outputs_again == outputs

    changed = runner.plan(ALPHA_REF, {**variables, "size": 3})
    assert changed.resources == (ResourceChange("terraform_data.thing", "update"),)
    renamed = runner.plan(ALPHA_REF, {**variables, "name": "two"})
    assert (renamed.add, renamed.change, renamed.destroy) == (1, 1, 1)
    assert ResourceChange("terraform_data.other", "replace") in renamed.resources

    destroyed = runner.destroy(ALPHA_REF, variables, log=log)
    assert (destroyed.add, destroyed.destroy) == (0, 2)
    assert runner.outputs(ALPHA_REF).values == {}


def test_plan_preview_leaves_state_and_lock_alone(runner: TerraformRunner) -> None:
    runner.run(ALPHA_REF, {"name": "one"})
    state = runner.workdir(ALPHA_REF) / "terraform.tfstate"
    before = state.read_bytes()
    with _Locked(state):  # a running apply holds the live state's lock: previews still work
        preview = runner.plan_preview(ALPHA_REF, {"name": "one", "size": 5})
    assert preview.resources == (ResourceChange("terraform_data.thing", "update"),)
    assert state.read_bytes() == before
    assert not (runner.workdir(ALPHA_REF) / "caas.tfplan").exists()
    assert list((runner.root / ".preview").iterdir()) == []
    # The preview left no lock behind: a real plan right after runs.
    assert runner.plan(ALPHA_REF, {"name": "one"}).has_changes is False


def test_preview_of_a_new_unit_plans_creation(runner: TerraformRunner) -> None:
    preview = runner.plan_preview(ALPHA_REF, {"name": "fresh"}, destroy=False)
    assert preview.add == 2
    assert not (runner.workdir(ALPHA_REF) / "terraform.tfstate").exists()


def test_lock_held_is_temporary(runner: TerraformRunner) -> None:
    runner.run(ALPHA_REF, {"name": "one"})
    state = runner.workdir(ALPHA_REF) / "terraform.tfstate"
    with _Locked(state), pytest.raises(TerraformTemporaryError) as caught:
        runner.plan(ALPHA_REF, {"name": "two"})
    assert caught.value.temporary and "state lock" in caught.value.message


def test_invalid_config_is_permanent(runner: TerraformRunner) -> None:
    with pytest.raises(TerraformPermanentError) as caught:
        runner.plan(UnitRef("dev", "broken", "tiny"), {"name": "x"})
    assert caught.value.temporary is False
    assert "Reference to undeclared input variable" in caught.value.message


def test_timeout_is_temporary(runner: TerraformRunner) -> None:
    runner.timeout_s = 3
    slow = UnitRef("dev", "slow", "tiny")
    runner.plan(slow, {})
    with pytest.raises(TerraformTemporaryError, match="timed out"):
        runner.apply(slow)


@pytest.mark.parametrize(("variables", "message"), [
    ({"name": "x", "colour": "red"}, "not declared ['colour']"),
    ({"size": 2}, "required but not passed ['name']"),
])
def test_variables_are_checked_before_terraform_runs(runner: TerraformRunner,
                                                     variables: dict[str, object],
                                                     message: str) -> None:
    with pytest.raises(TerraformPermanentError, match=message.replace("[", r"\[")):
        runner.plan(ALPHA_REF, variables)
    assert not runner.workdir(ALPHA_REF).exists()


def test_unknown_module_and_bad_names_are_permanent(runner: TerraformRunner) -> None:
    with pytest.raises(TerraformPermanentError, match="no module"):
        runner.plan(UnitRef("dev", "missing", "tiny"), {})
    with pytest.raises(TerraformError):
        UnitRef("../etc", "alpha", "tiny")
    with pytest.raises(TerraformPermanentError, match="no saved plan"):
        runner.apply(ALPHA_REF)


def test_destroy_of_a_unit_never_applied_is_a_no_op(runner: TerraformRunner) -> None:
    assert not runner.destroy(ALPHA_REF, {"name": "x"}).has_changes


def test_own_cli_config_ignores_the_environment(runner: TerraformRunner, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bogus = tmp_path / "bogus.tfrc"
    bogus.write_text("this is { not hcl")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(bogus))
    monkeypatch.setenv("TF_VAR_name", "from-the-environment")
    _, outputs = runner.run(ALPHA_REF, {"name": "from-the-file"})
    assert outputs.values["name"] == "from-the-file"
    assert "direct {}" in runner.cli_config().read_text()


def test_cli_config_uses_only_the_mirror(tmp_path: Path, modules: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "terraform_modules_dir": modules,
                                        "terraform_plugin_mirror": "/opt/tf-plugins"})
    text = TerraformRunner(settings).cli_config().read_text()
    assert 'filesystem_mirror {\n    path = "/opt/tf-plugins"' in text
    assert "direct" not in text and "plugin_cache_dir" in text


def test_override_files_must_be_overrides(tmp_path: Path, modules: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "terraform_modules_dir": modules})
    with pytest.raises(ValueError, match=r"_override\.tf"):
        TerraformRunner(settings, override_files={"main.tf": ""})


class _Locked:
    """Hold the POSIX record lock Terraform's local backend takes on the state file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.handle = self.path.open("r+")
        fcntl.lockf(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def __exit__(self, *exc: object) -> None:
        fcntl.lockf(self.handle, fcntl.LOCK_UN)
        self.handle.close()

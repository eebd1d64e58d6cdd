"""Renders in worker processes: side by side, the server's working directory untouched,
hooks run in the worker with cookiecutter's semantics, compiled templates per source."""

from __future__ import annotations

import json
import os
import signal
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cookiecutter.generate import generate_files

from scaffolder import render_pool


def _template(root: Path, *, body: str = "name: {{ cookiecutter.name }}\n",
              hook: str | None = None, pre_hook: str | None = None) -> Path:
    (root / "{{cookiecutter.name}}").mkdir(parents=True)
    (root / "cookiecutter.json").write_text(json.dumps({"name": "x"}))
    (root / "{{cookiecutter.name}}" / "file.yaml").write_text(body)
    if hook is not None or pre_hook is not None:
        (root / "hooks").mkdir()
    if hook is not None:
        (root / "hooks" / "post_gen_project.py").write_text(hook)
    if pre_hook is not None:
        (root / "hooks" / "pre_gen_project.py").write_text(pre_hook)
    return root


def _render(template: Path, name: str, *, hooks: bool = True) -> dict[str, bytes]:
    return dict(render_pool.render_files(template, {"cookiecutter": {"name": name}},
                                         hooks=hooks))


def test_concurrent_renders_each_get_their_own_files_and_cwd_stays(tmp_path: Path) -> None:
    hook = ("import os\n"
            "open('from-hook.txt', 'w').write(os.path.basename(os.getcwd()))\n")
    template = _template(tmp_path / "t", hook=hook)
    cwd = os.getcwd()
    names = [f"n{i}" for i in range(12)]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda n: _render(template, n), names))
    for name, files in zip(names, results, strict=True):
        assert files == {"file.yaml": f"name: {name}\n".encode(),
                         "from-hook.txt": name.encode()}
    assert os.getcwd() == cwd


def test_a_failing_hook_fails_the_render_with_its_message(tmp_path: Path) -> None:
    template = _template(tmp_path / "t", hook="import sys\nprint('noise on stdout')\n"
                         "sys.exit('environment {{ cookiecutter.name }} is not allowed')\n")
    with pytest.raises(render_pool.RenderError, match="environment bad is not allowed"):
        _render(template, "bad")
    # The worker still answers (what the hook printed did not reach the reply pipe).
    ok = _template(tmp_path / "ok", hook="print('noise')\n")
    assert _render(ok, "fine") == {"file.yaml": b"name: fine\n"}


def test_a_hook_raising_names_the_error(tmp_path: Path) -> None:
    template = _template(tmp_path / "t", hook="raise ValueError('no quota')\n")
    with pytest.raises(render_pool.RenderError, match="ValueError: no quota"):
        _render(template, "a")


def test_hooks_do_not_run_for_untrusted_templates(tmp_path: Path) -> None:
    template = _template(tmp_path / "t", hook="open('ran', 'w').write('yes')\n")
    assert _render(template, "a", hooks=False) == {"file.yaml": b"name: a\n"}


def test_a_pre_gen_hook_runs_through_cookiecutter(tmp_path: Path) -> None:
    template = _template(tmp_path / "t", pre_hook="import sys\nsys.exit(3)\n",
                         hook="open('post', 'w').write('x')\n")
    with pytest.raises(render_pool.RenderError, match="exit status: 3"):
        _render(template, "a")


def _left_in_tempdir(marker: str) -> list[Path]:
    folder = Path(tempfile.gettempdir())
    return [p for p in folder.glob("tmp*.py") if marker in p.read_text(errors="replace")]


def test_cookiecutter_s_hook_runner_leaves_no_temporary_file_per_render(tmp_path: Path) -> None:
    # cookiecutter writes each rendered hook script as NamedTemporaryFile(delete=False): the
    # render's scratch folder takes it (the worker inherits this process's temporary folder).
    marker = f"caas-leak-{uuid.uuid4().hex}"
    template = _template(tmp_path / "t", pre_hook=f"# {marker}\n",
                         hook=f"# {marker}\nopen('post', 'w').write('x')\n")
    assert _render(template, "a") == {"file.yaml": b"name: a\n", "post": b"x"}
    assert _left_in_tempdir(marker) == []


def test_hook_scratch_takes_cookiecutter_s_hook_scripts(tmp_path: Path) -> None:
    marker = f"caas-leak-{uuid.uuid4().hex}"
    template = _template(tmp_path / "t", hook=f"# {marker}\nopen('post', 'w').write('x')\n")
    with render_pool.hook_scratch() as folder:
        generate_files(repo_dir=str(template), context={"cookiecutter": {"name": "a"}},
                       output_dir=str(tmp_path / "out"), accept_hooks=True)
        assert [p.name for p in Path(folder).glob("tmp*.py")] != []
    assert not Path(folder).exists()
    assert tempfile.gettempdir() != folder
    assert (tmp_path / "out" / "a" / "post").read_text() == "x"
    assert _left_in_tempdir(marker) == []


def test_an_edited_template_renders_its_new_content(tmp_path: Path) -> None:
    template = _template(tmp_path / "t")
    assert _render(template, "a")["file.yaml"] == b"name: a\n"
    (template / "{{cookiecutter.name}}" / "file.yaml").write_text(
        "renamed: {{ cookiecutter.name | upper }}\n")
    assert _render(template, "a")["file.yaml"] == b"renamed: A\n"


def test_an_undefined_variable_is_a_render_error(tmp_path: Path) -> None:
    template = _template(tmp_path / "t", body="{{ cookiecutter.missing }}\n")
    with pytest.raises(render_pool.RenderError, match="missing"):
        _render(template, "a")


def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    template = _template(tmp_path / "t")
    assert _render(template, "a")
    idle = []
    while not render_pool._pool.idle.empty():
        idle.append(render_pool._pool.idle.get())
    for worker in idle:
        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        render_pool._pool.idle.put(worker)
    assert _render(template, "b") == {"file.yaml": b"name: b\n"}


def test_a_hook_s_own_environment_renders_each_source_and_renders_write_to_shm(
        tmp_path: Path) -> None:
    # The hook compiles through the worker's cache (keyed by source and configuration): two
    # renders with different sources and values must each get their own text.
    hook = ("import os\n"
            "from cookiecutter.environment import StrictEnvironment\n"
            "env = StrictEnvironment(context={}, keep_trailing_newline=True)\n"
            "src = open('file.yaml').read().replace('name', 'hooked')\n"
            "v = '{' + '{ v }' + '}|'\n"  # not rendered by cookiecutter: the hook's own
            "text = env.from_string(v + src).render(v='{{ cookiecutter.name }}')\n"
            "open('hooked.txt', 'w').write(text)\n"
            "open('cwd.txt', 'w').write(os.getcwd())\n")
    template = _template(tmp_path / "t", hook=hook)
    first, second = _render(template, "one"), _render(template, "two")
    assert first["hooked.txt"] == b"one|hooked: one\n"
    assert second["hooked.txt"] == b"two|hooked: two\n"
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        assert first["cwd.txt"].startswith(b"/dev/shm/caas-render-")

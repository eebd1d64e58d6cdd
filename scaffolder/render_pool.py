"""Cookiecutter renders in worker processes: no working-directory lock in the server.

``generate_files`` changes the process's working directory while it renders (and runs hooks
from there), so in the server process every render had to hold one process-wide lock and
every other thread's relative paths were wrong meanwhile. Here each render runs in a small
pool of worker processes (``python -m scaffolder.render_pool``, started on first use: nothing
of the server is inherited or re-imported), each doing one render at a time over a pipe, so
renders run side by side and the server's working directory never moves.

In a worker:

- compiled Jinja templates are kept (``_CompileCache``): the code of a template source under
  one environment configuration never changes, so a template's files compile once per template
  version (an edited file is another source, hence compiled again). Every cookiecutter
  environment in the worker uses it, a hook's own included (the tenant hook renders its overlay
  files through a ``StrictEnvironment`` of its own: compiling them was ~80% of a render);
- renders write into a scratch folder on ``/dev/shm`` when it is there (memory: the render's
  many small files, written then read back and removed, cost several times the Jinja work on a
  disk-backed ``/tmp``), else the system's temporary folder;
- a ``post_gen_project.py`` hook is rendered exactly as cookiecutter renders it (its Jinja
  environment and context) and executed in the worker instead of a new Python process; the
  same file still runs as a subprocess under the plain ``cookiecutter`` CLI and is mirrored by
  Backstage's ``each`` step (``templates/README.md``). A template with any other hook (a
  ``pre_gen_project`` hook, a shell hook) runs through cookiecutter's own hook runner, whose
  rendered scripts (``NamedTemporaryFile(delete=False)``, never removed) go into the render's
  scratch folder and leave with it (``hook_scratch``).

``render_files(repo_dir, context, hooks=…)`` → ``[(path relative to the project, bytes)]`` of
every regular file (symlinks are left out); raises ``RenderError`` (a message) when the
template does not render or a hook fails. Hooks only run for trusted templates (the caller
decides: ``Template.trusted``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from cookiecutter import generate, hooks
from cookiecutter.environment import StrictEnvironment
from cookiecutter.exceptions import CookiecutterException, FailedHookException
from cookiecutter.utils import work_in
from jinja2 import TemplateError

# One worker per core, at most four: a render is CPU work (Jinja) plus small file I/O.
WORKERS = max(1, min(4, os.cpu_count() or 1))
# Compiled sources kept per worker. Folder names are rendered with the temporary output path in
# them (one-off sources), so the cache is an LRU; a template's own sources are used on every
# render and stay.
COMPILED = 4096
POST_GEN = "post_gen_project"


class RenderError(Exception):
    """The template did not render with this context (the message says why)."""


# ---- in the worker ------------------------------------------------------------------------------


class _CompileCache:
    """``Environment.compile`` memoised by (environment configuration, source, name, raw),
    least recently used first out beyond ``COMPILED`` entries."""

    def __init__(self, compile_: Callable[..., Any]) -> None:
        self._compile = compile_
        self._codes: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    @staticmethod
    def configuration(env: Any) -> tuple[Any, ...]:
        return (type(env), tuple(sorted(env.extensions)), tuple(sorted(env.filters)),
                tuple(sorted(env.tests)), env.block_start_string, env.block_end_string,
                env.variable_start_string, env.variable_end_string,
                env.comment_start_string, env.comment_end_string, env.line_statement_prefix,
                env.line_comment_prefix, env.trim_blocks, env.lstrip_blocks,
                env.newline_sequence, env.keep_trailing_newline, env.optimized,
                env.autoescape, env.undefined)

    def __call__(self, env: Any, source: Any, name: str | None = None,
                 filename: str | None = None, raw: bool = False,
                 defer_init: bool = False) -> Any:
        if not isinstance(source, str):  # an already parsed template: nothing to key on
            return self._compile(env, source, name, filename, raw, defer_init)
        key = (self.configuration(env), source, name, filename, raw, defer_init)
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = self._compile(env, source, name, filename, raw,
                                                    defer_init)
            if len(self._codes) > COMPILED:
                self._codes.popitem(last=False)
        else:
            self._codes.move_to_end(key)
        return code


_compile_cache: _CompileCache | None = None  # set in the worker only (``start_worker``)


def _cached_compile(env: Any, source: Any, name: str | None = None,
                    filename: str | None = None, raw: bool = False,
                    defer_init: bool = False) -> Any:
    """``StrictEnvironment.compile`` in the worker: through the compile cache."""
    assert _compile_cache is not None
    return _compile_cache(env, source, name, filename, raw, defer_init)


def _environment(context: dict[str, Any]) -> StrictEnvironment:
    """What ``cookiecutter.utils.create_env_with_context`` builds."""
    envvars = context.get("cookiecutter", {}).get("_jinja2_env_vars", {})
    return StrictEnvironment(context=context, keep_trailing_newline=True, **envvars)


def _scratch_root() -> str | None:
    """Where renders write: ``/dev/shm`` when it is a writable folder, else the default."""
    shm = "/dev/shm"  # noqa: S108 - a private TemporaryDirectory inside it
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


_SCRATCH: str | None = None


def start_worker() -> None:
    """Pool initializer (in the worker only): every cookiecutter environment compiles through
    the cache (hooks' own environments too) and renders write to the scratch root; the
    server process itself is never changed."""
    global _compile_cache, _SCRATCH
    if _compile_cache is None:
        _compile_cache = _CompileCache(StrictEnvironment.compile)
        StrictEnvironment.compile = _cached_compile
    generate.create_env_with_context = _environment
    _SCRATCH = _scratch_root()


@contextlib.contextmanager
def hook_scratch(dir: str | None = None) -> Iterator[str]:
    """A temporary folder (inside ``dir``; default: the system's) that Python's temporary files
    go to meanwhile (``tempfile.tempdir``), removed afterwards with what they left.

    Cookiecutter's hook runner (``cookiecutter.hooks.run_script_with_context``) writes each
    rendered hook script as ``NamedTemporaryFile(delete=False)`` and never removes it: one
    ``tmp*.py`` per hook run, forever. Every caller of that runner (``generate_files`` or
    ``cookiecutter()`` with hooks on) wraps the call in this. Process-wide: the pool's worker
    renders one at a time; tests and benches call it from one thread."""
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="caas-hooks-", dir=dir) as folder:
        tempfile.tempdir = folder
        try:
            yield folder
        finally:
            tempfile.tempdir = saved


def _in_process_hooks(repo_dir: Path) -> list[str] | None:
    """The template's hooks when the only one is a Python ``post_gen_project`` (None: let
    cookiecutter run whatever hooks it has)."""
    folder = repo_dir / "hooks"
    if not folder.is_dir():
        return []
    if hooks.find_hook("pre_gen_project", hooks_dir=str(folder)):
        return None
    scripts = hooks.find_hook(POST_GEN, hooks_dir=str(folder)) or []
    return scripts if all(s.endswith(".py") for s in scripts) else None


def _run_python_hook(script: str, project_dir: str, context: dict[str, Any]) -> None:
    """Render ``script`` as cookiecutter does, then run it as ``__main__`` in ``project_dir``:
    exit status 0 (or ``SystemExit(None|0)``) succeeds, anything else fails the render."""
    source = _environment(context).from_string(
        Path(script).read_text(encoding="utf-8")).render(**context)
    namespace = {"__name__": "__main__", "__file__": script}
    with work_in(project_dir):
        try:
            exec(compile(source, script, "exec"), namespace)  # noqa: S102 - trusted template
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise FailedHookException(f"Hook script failed: {exc.code}") from None
        except Exception as exc:  # the hook's own error, named
            raise FailedHookException(f"Hook script failed ({type(exc).__name__}: {exc})"
                                      ) from None


def render_in_worker(repo_dir: str, context: dict[str, Any],
                     hooks_allowed: bool) -> list[tuple[str, bytes]]:
    """The worker's job (see the module docstring); runs in a pool process."""
    root_dir = Path(repo_dir)
    scripts = _in_process_hooks(root_dir) if hooks_allowed else []
    with tempfile.TemporaryDirectory(prefix="caas-render-", dir=_SCRATCH) as tmp:
        try:
            with hook_scratch(tmp) if scripts is None else contextlib.nullcontext():
                project = generate.generate_files(
                    repo_dir=repo_dir, context=context, output_dir=tmp,
                    accept_hooks=hooks_allowed and scripts is None)
            for script in scripts or []:
                _run_python_hook(script, project, context)
        except (CookiecutterException, TemplateError, OSError) as exc:
            raise RenderError(str(exc)) from None
        root = Path(tmp).resolve()
        project_path = Path(project).resolve()
        if root not in project_path.parents:
            raise RenderError("the rendered project left the output directory")
        return [(item.relative_to(project_path).as_posix(), item.read_bytes())
                for item in sorted(project_path.rglob("*"))
                if not item.is_symlink() and item.is_file()]


# ---- in the worker process: the loop ----------------------------------------------------------


def _send(stream: IO[bytes], message: object) -> None:
    data = pickle.dumps(message)
    stream.write(len(data).to_bytes(8, "big") + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("the other side closed the pipe")
    size = int.from_bytes(header, "big")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the other side closed the pipe")
    return pickle.loads(data)  # noqa: S301 - our own parent or child process


def serve() -> None:
    """A worker's loop: one request (repo_dir, context, hooks) at a time from stdin, one
    reply ("ok", files) | ("error", message) | ("crash", message) to the original stdout;
    whatever a hook prints goes to stderr. Ends when stdin closes."""
    start_worker()
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    while True:
        try:
            repo_dir, context, hooks_allowed = _receive(requests)
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", render_in_worker(repo_dir, context, hooks_allowed))
        except RenderError as exc:
            reply = ("error", str(exc))
        except Exception as exc:  # a defect, reported as one in the server
            reply = ("crash", f"{type(exc).__name__}: {exc}")
        _send(replies, reply)


# ---- in the server ------------------------------------------------------------------------------

# Where ``python -m scaffolder.render_pool`` imports this package from.
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class _Worker:
    """One worker process and its pipes."""

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scaffolder.render_pool"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=env, cwd=tempfile.gettempdir())

    def call(self, request: tuple[str, dict[str, Any], bool]) -> tuple[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        _send(self.proc.stdin, request)
        reply: tuple[str, Any] = _receive(self.proc.stdout)
        return reply

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Pool:
    """Up to ``WORKERS`` workers, started on demand; a render takes an idle one or waits."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self.lock = threading.Lock()
        self.started = 0

    def take(self) -> _Worker:
        """An idle live worker, a new one while fewer than ``size`` run, or the next freed."""
        while True:
            with self.lock:
                if self.idle.empty() and self.started < self.size:
                    self.started += 1
                    try:
                        return _Worker()
                    except BaseException:
                        self.started -= 1
                        raise
            worker = self.idle.get()
            if worker.proc.poll() is None:
                return worker
            self.lose(worker)  # died while idle

    def give_back(self, worker: _Worker) -> None:
        self.idle.put(worker)

    def lose(self, worker: _Worker) -> None:
        """A worker that died or left its pipe in an unknown state: stopped, not reused."""
        with self.lock:
            self.started -= 1
        worker.proc.kill()
        worker.proc.wait()

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get().stop()


_pool = _Pool(WORKERS)
atexit.register(_pool.close)


def worker_pids() -> list[int]:
    """Process ids of the idle workers (a benchmark reads their peak memory)."""
    return [worker.proc.pid for worker in list(_pool.idle.queue)]


def render_files(repo_dir: Path, context: dict[str, Any], *,
                 hooks: bool) -> list[tuple[str, bytes]]:
    """Render ``repo_dir`` with ``context`` in a worker process (see the module docstring).
    A worker that died (killed, out of memory) is replaced and the render tried once more;
    ``RenderError`` when the template does not render, ``RuntimeError`` on a worker defect."""
    for attempt in (1, 2):
        worker = _pool.take()
        try:
            kind, value = worker.call((str(repo_dir), context, hooks))
        except (OSError, EOFError, pickle.PickleError):
            _pool.lose(worker)
            if attempt == 2:
                raise
            continue
        except BaseException:
            _pool.lose(worker)
            raise
        _pool.give_back(worker)
        if kind == "ok":
            files: list[tuple[str, bytes]] = value
            return files
        if kind == "error":
            raise RenderError(value)
        raise RuntimeError(f"render worker: {value}")
    raise AssertionError("unreachable")


if __name__ == "__main__":
    serve()

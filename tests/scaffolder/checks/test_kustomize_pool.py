"""Warm ``kubectl kustomize`` spares: the same output as a direct build, kustomize's own errors,
the load restrictor kept, and no process or folder left behind (after use, a fork, a dead
parent)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scaffolder.checks import kustomize_pool
from scaffolder.checks.kustomize import KustomizeError, build

KUBECTL = "kubectl"
CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n"
REPO = Path(__file__).resolve().parents[3]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def spare_folders() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("caas-kustomize-warm-*")}


@pytest.fixture
def warm() -> Iterator[None]:
    kustomize_pool.configure(2, kubectl=KUBECTL)
    wait_for(lambda: len(kustomize_pool.spare_pids()) == 2)
    yield
    kustomize_pool.configure(0, kubectl=KUBECTL)


def cold(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True,
                          check=False, env={"PATH": os.environ["PATH"], "HOME": str(path)})


def warm_run(path: Path, timeout: float = 30.0) -> tuple[int, str, str]:
    wait_for(lambda: bool(kustomize_pool.spare_pids(ready=True)))
    result = kustomize_pool.run(KUBECTL, path, timeout=timeout)
    assert result is not None, "no spare was ready"
    return result


def overlay_tree(root: Path) -> Path:
    write(root / "base" / "kustomization.yaml", "resources: [cm.yaml]\n")
    write(root / "base" / "cm.yaml", CM)
    write(root / "envs" / "dev" / "kustomization.yaml",
          "resources: [../../base]\nnamespace: team-a\n")
    return root / "envs" / "dev"


def test_every_template_overlay_builds_byte_for_byte_as_a_direct_build(
        warm: None, rendered: dict[str, Path]) -> None:
    folders = sorted({k.parent for root in rendered.values()
                      for k in root.rglob("kustomization.yaml")})
    assert any("envs" in f.parts for f in folders) and len(folders) >= 6, folders
    for folder in folders:
        direct = cold(folder)
        assert direct.returncode == 0, direct.stderr
        code, out, err = warm_run(folder)
        assert (code, out) == (0, direct.stdout), (folder, err)


def test_a_spare_is_used_once_and_replaced(warm: None, tmp_path: Path) -> None:
    overlay = overlay_tree(tmp_path)
    before = set(kustomize_pool.spare_pids())
    assert build(overlay) == cold(overlay).stdout
    wait_for(lambda: len(kustomize_pool.spare_pids()) == 2)
    after = set(kustomize_pool.spare_pids())
    assert len(before - after) == 1 and not any(alive(p) for p in before - after)


def test_concurrent_builds_from_threads(warm: None, tmp_path: Path) -> None:
    overlay = overlay_tree(tmp_path)
    expected = cold(overlay).stdout
    outputs: list[str] = []
    threads = [threading.Thread(target=lambda: outputs.append(build(overlay)))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outputs == [expected] * 6


def test_a_failing_overlay_gives_kustomizes_own_message(warm: None, tmp_path: Path) -> None:
    write(tmp_path / "kustomization.yaml", "resources: [missing.yaml]\n")
    direct = cold(tmp_path).stderr.strip().splitlines()[-1]
    code, _out, err = warm_run(tmp_path)
    assert code != 0 and "accumulating resources from" in err  # the wrapper's wording
    with pytest.raises(KustomizeError) as raised:
        build(tmp_path)
    # build() ran it again cold: kustomize's message about the overlay itself
    assert raised.value.message.endswith(direct.split("]", 1)[-1].strip())
    assert "missing.yaml" in raised.value.message


@pytest.mark.parametrize("attack", ["dotdot", "symlink", "spare-dir", "spare-dir/hand"])
def test_the_load_restrictor_still_holds(warm: None, tmp_path: Path, attack: str) -> None:
    write(tmp_path / "secret.txt", "s3cret\n")
    overlay = tmp_path / "tree" / "overlay"
    if attack == "dotdot":
        write(overlay / "kustomization.yaml",
              "configMapGenerator:\n- name: x\n  files: [../../secret.txt]\n")
    elif attack == "symlink":
        write(overlay / "kustomization.yaml",
              "configMapGenerator:\n- name: x\n  files: [link.txt]\n")
        (overlay / "link.txt").symlink_to(tmp_path / "secret.txt")
    else:  # the spare's own folders, where the FIFO was: no hang
        kustomize_pool.configure(1, kubectl=KUBECTL)
        wait_for(lambda: len(kustomize_pool.spare_pids()) == 1)
        mine = f"caas-kustomize-warm-{os.getpid()}-"
        (spare,) = {f for f in spare_folders() if f.startswith(mine)}
        write(overlay / "kustomization.yaml",
              f"resources: [{os.path.relpath(Path(tempfile.gettempdir(), spare), overlay)}"
              f"{attack.removeprefix('spare-dir')}]\n")
    code, out, err = warm_run(overlay, timeout=20)
    assert code != 0 and "s3cret" not in out, (out, err)
    if not attack.startswith("spare-dir"):
        assert "security" in err or "not in or below" in err, err
    with pytest.raises(KustomizeError):
        build(overlay)


def test_the_timeout_holds(warm: None, tmp_path: Path) -> None:
    write(tmp_path / "kustomization.yaml", "resources: [cm.yaml]\n")
    os.mkfifo(tmp_path / "cm.yaml")  # nobody writes it: kubectl blocks reading
    started = time.monotonic()
    with pytest.raises(KustomizeError, match="took longer than 1s"):
        build(tmp_path, timeout=1.0)
    assert time.monotonic() - started < 10


def test_a_spare_is_ready_once_kubectl_waits_at_its_fifo() -> None:
    kustomize_pool.configure(1, kubectl=KUBECTL)
    try:
        wait_for(lambda: bool(kustomize_pool.spare_pids(ready=True)))
        (pid,) = kustomize_pool.spare_pids(ready=True)
        waits = [(t / "wchan").read_text() for t in Path(f"/proc/{pid}/task").iterdir()]
        assert "wait_for_partner" in waits
    finally:
        kustomize_pool.configure(0, kubectl=KUBECTL)


def test_size_zero_is_the_cold_path_and_leaves_nothing(tmp_path: Path) -> None:
    kustomize_pool.configure(2, kubectl=KUBECTL)
    wait_for(lambda: len(kustomize_pool.spare_pids()) == 2)
    pids = kustomize_pool.spare_pids()
    kustomize_pool.configure(0, kubectl=KUBECTL)
    assert kustomize_pool.spare_pids() == [] and not any(alive(p) for p in pids)
    assert kustomize_pool.run(KUBECTL, overlay_tree(tmp_path), timeout=5) is None
    assert build(tmp_path / "envs" / "dev") == cold(tmp_path / "envs" / "dev").stdout


def test_another_kubectl_is_never_given_a_spare(warm: None, tmp_path: Path) -> None:
    write(tmp_path / "kustomization.yaml", "resources: []\n")
    assert kustomize_pool.run(str(tmp_path / "no-kubectl"), tmp_path, timeout=5) is None
    with pytest.raises(KustomizeError, match="not installed"):
        build(tmp_path, kubectl=str(tmp_path / "no-kubectl"))


PARENT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from scaffolder.checks import kustomize_pool
    kustomize_pool.configure(2, kubectl="kubectl")
    while len(kustomize_pool.spare_pids()) < 2:
        time.sleep(0.02)
    print(*kustomize_pool.spare_pids(), flush=True)
    if sys.argv[1] == "fork":
        pid = os.fork()
        if pid == 0:  # the child forgets the parent's spares and starts its own
            mine = kustomize_pool.spare_pids()
            kustomize_pool.configure(1, kubectl="kubectl")
            while not kustomize_pool.spare_pids():
                time.sleep(0.02)
            out = kustomize_pool.run("kubectl", Path(sys.argv[2]), timeout=20)
            print("child", mine, out is not None and out[0], flush=True)
            kustomize_pool.close()
            os._exit(0)
        os.waitpid(pid, 0)
        print("parent", kustomize_pool.spare_pids(), flush=True)
        print(os.getpid(), pid, flush=True)
    else:
        time.sleep(60)  # killed here
""")


def test_spares_die_with_a_killed_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, "kill"], stdout=subprocess.PIPE,
                              text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert parent.stdout is not None
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(alive(p) for p in pids)
    parent.kill()
    parent.wait()
    wait_for(lambda: not any(alive(p) for p in pids), seconds=10)
    left = {f for f in spare_folders() if f.startswith(f"caas-kustomize-warm-{parent.pid}-")}
    assert len(left) == 2  # kill -9: no clean-up in the parent; the next pool removes them
    kustomize_pool.configure(1, kubectl=KUBECTL)
    try:
        wait_for(lambda: not left & spare_folders())
    finally:
        kustomize_pool.configure(0, kubectl=KUBECTL)


def test_a_forked_child_starts_its_own_spares(tmp_path: Path) -> None:
    overlay = overlay_tree(tmp_path)
    proc = subprocess.run([sys.executable, "-c", PARENT, "fork", str(overlay)],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stderr
    parents = lines[0].split()
    assert lines[1] == "child [] 0"
    assert lines[2] == f"parent {[int(p) for p in parents]}"
    # every spare of both processes stopped at exit, its folder removed
    wait_for(lambda: not any(alive(int(p)) for p in parents), seconds=10)
    owners = lines[3].split()
    assert not {f for f in spare_folders() for o in owners
                if f.startswith(f"caas-kustomize-warm-{o}-")}

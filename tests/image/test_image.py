"""The OCI image `make image` builds, run the way a cluster runs it: unpacked from the archive,
a read-only root filesystem, state only on the /var/lib/caas volume, as the image's non-root
user, `caas` as entrypoint. `caas serve` answers /healthz and /readyz and renders a dry run.

Needs root (debootstrap, buildah's vfs driver, mount namespaces). scripts/image.sh caches the
Debian base and the wheels under /var/cache/caas-image, so a rerun on one machine is quick.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.ports import free_port
from gitops.git import seed_repository

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(2400)]
ROOT = Path(__file__).resolve().parents[2]
UID = 10001


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    prebuilt = os.environ.get("CAAS_IMAGE_ARCHIVE")  # `make image` output, to test it as is
    if prebuilt:
        return Path(prebuilt), Path(prebuilt + ".digest").read_text().strip()
    out = tmp_path_factory.mktemp("image") / "caas-portal.oci.tar"
    built = subprocess.run(["bash", str(ROOT / "scripts" / "image.sh"), str(out)], cwd=ROOT,
                           capture_output=True, text=True, timeout=2400, check=False)
    assert built.returncode == 0, built.stderr[-4000:]
    digest = built.stdout.strip().splitlines()[-1]
    return out, digest


def blob(layout: Path, digest: str) -> Path:
    algorithm, value = digest.split(":")
    return layout / "blobs" / algorithm / value


@pytest.fixture(scope="module")
def unpacked(archive: tuple[Path, str],
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The OCI layout read by hand: index → manifest → config and layers, applied in order."""
    path, digest = archive
    layout = tmp_path_factory.mktemp("layout")
    with tarfile.open(path) as tar:
        tar.extractall(layout, filter="data")  # plain files: blobs, index, oci-layout
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["digest"] == digest  # what `make image` printed is the manifest's digest
    manifest = json.loads(blob(layout, entry["digest"]).read_text())
    config = json.loads(blob(layout, manifest["config"]["digest"]).read_text())
    rootfs = tmp_path_factory.mktemp("rootfs")
    rootfs.chmod(0o755)  # "/" of the container (mktemp makes it 0700)
    for layer in manifest["layers"]:
        assert layer["mediaType"].startswith("application/vnd.oci.image.layer.v1.tar")
        subprocess.run(["tar", "--numeric-owner", "-xpf", str(blob(layout, layer["digest"])),
                        "-C", str(rootfs)], check=True)
    return rootfs, config


def test_image_config(unpacked: tuple[Path, dict[str, Any]]) -> None:
    rootfs, config = unpacked
    image = config["config"]
    assert image["User"] == f"{UID}:{UID}"
    assert image["Entrypoint"] == ["/opt/caas/bin/caas"]
    assert image["Cmd"] == ["serve"]
    assert "/var/lib/caas" in image["Volumes"]
    assert f"caas:x:{UID}:{UID}:" in (rootfs / "etc" / "passwd").read_text()
    packages = (rootfs / "usr" / "share" / "caas" / "packages.txt").read_text()
    assert "python3.11" in packages and "caas-portal" in packages and "fastapi==" in packages
    assert "Client Version:" in packages  # kubectl, for the kustomize check
    # The shipped templates sit beside the packages, so they are the trusted ones.
    site = rootfs / "opt" / "caas" / "lib" / "python3.11" / "site-packages"
    assert (site / "templates" / "tenant" / "template.yaml").is_file()
    assert (site / "gitops-skeleton" / "platform" / "caas-portal").is_dir()


class Container:
    """Runs the image's entrypoint in a private mount namespace: root read-only, /proc, /dev,
    a tmpfs /tmp and the state directory at /var/lib/caas; as the image's user."""

    def __init__(self, rootfs: Path, config: dict[str, Any], state: Path) -> None:
        self.rootfs, self.state = rootfs, state
        self.env = dict(e.split("=", 1) for e in config["config"]["Env"])
        self.entrypoint = config["config"]["Entrypoint"]

    def argv(self, *args: str, command: list[str] | None = None) -> list[str]:
        """``command`` (default: the image's entrypoint) with ``args`` inside the container."""
        r = shlex.quote(str(self.rootfs))
        setup = (f"mount --bind {r} {r} && mount -o remount,bind,ro {r} && "
                 f"mount -t proc proc {r}/proc && mount --rbind /dev {r}/dev && "
                 f"mount -t tmpfs tmpfs {r}/tmp && "
                 f"mount --bind {shlex.quote(str(self.state))} {r}/var/lib/caas && "
                 f'exec chroot --userspec={UID}:{UID} {r} "$@"')
        variables = [f"{k}={v}" for k, v in self.env.items()]
        return ["unshare", "--mount", "--propagation", "private", "--fork", "--", "sh", "-c",
                setup, "sh", "/usr/bin/env", "-i", *variables, *(command or self.entrypoint),
                *args]

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), input=stdin, capture_output=True, text=True,
                              timeout=300, check=False)


@pytest.fixture
def container(unpacked: tuple[Path, dict[str, Any]], tmp_path: Path) -> Container:
    rootfs, config = unpacked
    state = tmp_path / "state"
    state.mkdir()
    seed_repository(state / "gitops.git", ROOT / "gitops-skeleton", branch="main")
    (state / "tmp").mkdir()
    for path in [state, *state.rglob("*")]:
        os.chown(path, UID, UID, follow_symlinks=False)
    return Container(rootfs, config, state)


@pytest.fixture
def served(container: Container) -> Iterator[tuple[str, str]]:
    added = container.run("user", "add", "admin", "--admin", "--password-stdin",
                          stdin="correct-horse-battery-staple\n")
    assert added.returncode == 0, added.stderr
    token = container.run("token", "create", "admin")
    assert token.returncode == 0, token.stderr
    port = free_port()
    log = (container.state / "serve.log").open("w")
    process = subprocess.Popen(container.argv("serve", "--host", "127.0.0.1", "--port", str(port)),
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (container.state / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        yield base, token.stdout.strip()
    finally:
        with contextlib.suppress(ProcessLookupError):  # unshare, sh, chroot and caas alike
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def test_serve_from_the_image_on_a_read_only_root(served: tuple[str, str],
                                                  container: Container) -> None:
    base, token = served
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready", "database": "sqlite"}
    body = {"template": "tenant", "answers": {"team": "platform", "name": "img",
                                             "cost_center": "cc-9", "environments": ["dev"]}}
    dry = httpx.post(f"{base}/api/scaffolder/dry-run", json=body, timeout=120,
                     headers={"Authorization": f"Bearer {token}"})
    assert dry.status_code == 200, dry.text
    files = {f["path"] for f in dry.json()["files"]}
    assert "tenants/platform/platform-img/base/namespace.yaml" in files
    assert all(c["state"] == "success" for c in dry.json()["checks"]), dry.json()["checks"]
    # State went to the volume (the root is read-only).
    assert (container.state / "caas.db").is_file()


def test_root_filesystem_is_read_only(container: Container) -> None:
    attempt = subprocess.run(container.argv("/opt/caas/written", command=["/usr/bin/touch"]),
                             capture_output=True, text=True, timeout=60, check=False)
    assert attempt.returncode != 0 and "Read-only file system" in attempt.stderr

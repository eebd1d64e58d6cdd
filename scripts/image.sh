#!/usr/bin/env bash
# Builds the caas-portal OCI image without a Docker daemon and without pulling a base image:
#   1. a Debian bookworm root filesystem made by debootstrap from Debian's packages, cached as a
#      tarball under $CAAS_IMAGE_CACHE (default /var/cache/caas-image), keyed by suite and the
#      package list, so a rerun on the same machine skips it (never shared across the network);
#   2. buildah (vfs storage, run as root) unpacks it into a scratch container, creates
#      /opt/caas (a venv) and installs this project's wheel and its dependencies offline from a
#      wheelhouse the host's pip fills from PyPI ($CAAS_IMAGE_CACHE/wheelhouse, reused);
#   3. non-root user caas (10001), state on the /var/lib/caas volume, read-only-rootfs friendly
#      (no bytecode writes, HOME and TMPDIR on the volume), `caas` as entrypoint, the installed
#      Debian and Python packages recorded in /usr/share/caas/packages.txt;
#   4. writes an OCI archive (default dist/caas-portal.oci.tar) and prints its manifest digest
#      (sha256:...) as the last line of stdout; the digest also lands in <archive>.digest.
# Usage: scripts/image.sh [OUTPUT.tar]      (root required: debootstrap and buildah's vfs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="$(realpath -m "${1:-dist/caas-portal.oci.tar}")"
CACHE="${CAAS_IMAGE_CACHE:-/var/cache/caas-image}"
SUITE="${CAAS_IMAGE_SUITE:-bookworm}"
MIRROR="${CAAS_IMAGE_MIRROR:-http://deb.debian.org/debian}"
TAG="${CAAS_IMAGE_TAG:-localhost/caas-portal:$(git rev-parse --short HEAD 2>/dev/null || echo dev)}"
# git: the portal and worker run git against the GitOps repository; python3-venv: /opt/caas;
# libatomic1: a native library some wheels link (the Rego engine).
PACKAGES="ca-certificates,git,libatomic1,python3,python3-venv,tzdata"
UID_GID=10001

log() { echo "[image $(date +%T)] $*" >&2; }
[ "$(id -u)" = "0" ] || { echo "scripts/image.sh must run as root (debootstrap, buildah vfs)" >&2; exit 1; }
need=()
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$CACHE" "$(dirname "$OUT")"
BUILDAH=(buildah --storage-driver vfs --root "$CACHE/storage" --runroot /run/caas-image)

# ---- 1. base root filesystem (cached) ----------------------------------------------------------
key="$(printf '%s %s %s' "$SUITE" "$PACKAGES" "$MIRROR" | sha256sum | cut -c1-12)"
BASE="$CACHE/base-$SUITE-$key.tar"
if [ ! -f "$BASE" ]; then
  log "debootstrap $SUITE (cold: no $BASE)"
  work="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work" "$MIRROR" >&2
  # Nothing of apt's downloads or lists belongs in the image.
  rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/* "$work"/var/log/*
  tar -C "$work" --numeric-owner -cf "$BASE.tmp" .
  mv "$BASE.tmp" "$BASE"
  find "$CACHE" -maxdepth 1 -name "base-*.tar" ! -name "$(basename "$BASE")" -delete
  rm -rf "$work"; trap - EXIT
fi

# ---- 2. the project's wheel and its dependencies' wheels ---------------------------------------
# Resolved and downloaded on the host (the host's pip reaches PyPI through its own settings);
# the image installs them offline. Bookworm's python3 is CPython 3.11, so the host's 3.11 picks
# the same cp311/manylinux wheels. The wheelhouse is a cache: a rerun downloads nothing new.
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"; [ -n "${ctr:-}" ] && "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
HOST_PY="${CAAS_IMAGE_HOST_PYTHON:-python3}"
"$HOST_PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "the host python must be 3.11 (bookworm's) to pick matching wheels" >&2; exit 1; }
# Built from a copy of the tracked files: no stale build/ or egg-info of the checkout leaks in.
mkdir "$wheels/src"
git -C "$ROOT" ls-files -z | tar -C "$ROOT" --null -T - -cf - | tar -C "$wheels/src" -xf -
"$HOST_PY" -m pip wheel -q --no-deps -w "$wheels" "$wheels/src" >&2
wheel="$(ls "$wheels"/*.whl)"
mkdir -p "$CACHE/wheelhouse"
# Resolving against PyPI takes minutes on a busy machine: once per set of requirements.
reqs="$("$HOST_PY" - "$wheel" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    print("\n".join(sorted(l for l in whl.read(meta).decode().splitlines()
                           if l.startswith("Requires-Dist:") and "extra ==" not in l)))
PY
)"
resolved="$CACHE/wheelhouse/.resolved-$(printf '%s' "$reqs" | sha256sum | cut -c1-12)"
if [ ! -f "$resolved" ]; then
  "$HOST_PY" -m pip wheel -q --disable-pip-version-check -w "$CACHE/wheelhouse" \
    --find-links "$CACHE/wheelhouse" "$wheel" >&2
  touch "$resolved"
fi
cp "$wheel" "$CACHE/wheelhouse/"
log "wheel $(basename "$wheel"), $(ls "$CACHE/wheelhouse" | wc -l) wheels"

# ---- 3. the image ------------------------------------------------------------------------------
ctr="$("${BUILDAH[@]}" from scratch)"
mnt="$("${BUILDAH[@]}" mount "$ctr")"
tar -C "$mnt" --numeric-owner -xf "$BASE"
# Data the wheel does not carry: templates, GitOps skeleton, Terraform units. They sit beside the
# packages (settings.REPO_ROOT) so the shipped templates stay the trusted ones.
site=/opt/caas/lib/python3.11/site-packages
run() { "${BUILDAH[@]}" run --isolation chroot --user 0:0 \
          -v "$CACHE/wheelhouse:/wheels:ro" "$ctr" -- "$@"; }
# The installed venv is cached too, keyed by the base and the wheels available: when neither
# changed, only this project's wheel is reinstalled over it (seconds instead of minutes).
deps_key="$( (echo "$key"; echo "$reqs"; ls "$CACHE/wheelhouse" | grep -v '^caas_portal-') \
  | sha256sum | cut -c1-12)"
VENV_TAR="$CACHE/venv-$deps_key.tar"
pip_install=(/opt/caas/bin/pip install -q --disable-pip-version-check --no-index --find-links /wheels)
if [ -f "$VENV_TAR" ]; then
  log "venv from cache ($VENV_TAR)"
  tar -C "$mnt" --numeric-owner -xf "$VENV_TAR"
  run "${pip_install[@]}" --no-deps --force-reinstall "/wheels/$(basename "$wheel")"
  run /opt/caas/bin/pip check >&2  # the cached venv satisfies this wheel's requirements
else
  log "venv: installing the wheels (cold: no $VENV_TAR)"
  run python3 -m venv /opt/caas
  # A wheel missing from the wheelhouse: resolve again on the next run.
  run "${pip_install[@]}" "/wheels/$(basename "$wheel")" || { rm -f "$resolved"; exit 1; }
  tar -C "$mnt" --numeric-owner -cf "$VENV_TAR.tmp" opt/caas && mv "$VENV_TAR.tmp" "$VENV_TAR"
  find "$CACHE" -maxdepth 1 -name "venv-*.tar" ! -name "$(basename "$VENV_TAR")" -delete
fi
log "venv ready"
git -C "$ROOT" ls-files -z templates gitops-skeleton terraform \
  | tar -C "$ROOT" --null -T - -cf - | tar -C "$mnt$site" --no-same-owner -xf -
# kubectl runs the scaffolder's kustomize check. Debian bookworm does not package it, so the
# build host's kubectl (the one the test suite runs) is copied in; its version is recorded.
KUBECTL="$(readlink -f "$(command -v kubectl)")" \
  || { echo "kubectl not found on the build host (scripts/system-deps.sh)" >&2; exit 1; }
install -m 0755 "$KUBECTL" "$mnt/usr/local/bin/kubectl"
mkdir -p "$mnt/usr/share/caas" "$mnt/var/lib/caas"
echo "caas:x:$UID_GID:$UID_GID:caas-portal:/var/lib/caas:/usr/sbin/nologin" >> "$mnt/etc/passwd"
echo "caas:x:$UID_GID:" >> "$mnt/etc/group"
chown "$UID_GID:$UID_GID" "$mnt/var/lib/caas"
{
  echo "# Debian packages (dpkg -l)"
  run dpkg -l
  echo "# Python packages in /opt/caas (pip freeze)"
  run /opt/caas/bin/pip freeze --all
  echo "# /usr/local/bin/kubectl (from the build host: $KUBECTL)"
  run /usr/local/bin/kubectl version --client
} > "$mnt/usr/share/caas/packages.txt"
rm -rf "$mnt/root/.cache" "$mnt/tmp/"* "$mnt/var/cache/debconf/"*-old
"${BUILDAH[@]}" umount "$ctr" >/dev/null
"${BUILDAH[@]}" config \
  --user "$UID_GID:$UID_GID" --workingdir /var/lib/caas --volume /var/lib/caas \
  --entrypoint '["/opt/caas/bin/caas"]' --cmd serve \
  --env PATH=/opt/caas/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env HOME=/var/lib/caas --env TMPDIR=/var/lib/caas/tmp --env PYTHONDONTWRITEBYTECODE=1 \
  --env PYTHONUNBUFFERED=1 --env CAAS_DATA_DIR=/var/lib/caas --env CAAS_HOST=0.0.0.0 \
  --port 8000 --port 8001 \
  --label org.opencontainers.image.title=caas-portal \
  --label "org.opencontainers.image.revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)" \
  "$ctr"
log "commit"
"${BUILDAH[@]}" commit -q --rm --format oci "$ctr" "$TAG" >/dev/null
ctr=""
rm -f "$OUT"
log "push to $OUT"
"${BUILDAH[@]}" push -q --digestfile "$OUT.digest" "$TAG" "oci-archive:$OUT:$TAG" >&2
"${BUILDAH[@]}" rmi "$TAG" >/dev/null 2>&1 || true
log "wrote $OUT ($(du -h "$OUT" | cut -f1))"
cat "$OUT.digest"; echo

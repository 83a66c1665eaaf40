#!/usr/bin/env bash
# Build our image from the repository's Dockerfile without any registry (`make image-local`).
#
# The Dockerfile's public base (ARG PYTHON_IMAGE) is swapped for a Debian bookworm rootfs made here
# with debootstrap from the mirror apt uses, and pip inside the build installs from a wheelhouse
# that pip fills on the host (ARG WHEELHOUSE): containers here reach neither Docker Hub nor PyPI.
# buildah builds it (no daemon, no iptables changes) and writes a docker-save archive that
# `ctr images import` and `kind load image-archive` take. Cached under
# ~/.cache/falco-reporter/images/: the base rootfs by suite + package-list version, the wheels by
# pyproject.toml + EXTRAS. Needs root (debootstrap, buildah). Prints the archive's path on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Bump BASE_VERSION whenever BASE_PACKAGES changes: it names the cached rootfs and the base image.
BASE_PACKAGES=python3,python3-venv,python-is-python3,ca-certificates
BASE_VERSION=1
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE="${IMAGE:-localhost/falco-reporter:${VERSION}}"
EXTRAS="${EXTRAS:-}"
PY="${PY:-.venv/bin/python}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/falco-reporter/images"
OUT="${IMAGE_ARCHIVE:-build/image/falco-reporter.tar}"
BASE_IMAGE="localhost/falco-reporter/python-base:${SUITE}-${BASE_VERSION}"
BASE_TAR="$CACHE/base-${SUITE}-${BASE_VERSION}.tar"

log() { echo "[image] $*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  echo "[image] building the image needs root (debootstrap, buildah)" >&2
  exit 1
fi
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v buildah >/dev/null || missing+=(buildah)
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
fi
mkdir -p "$CACHE" "$(dirname "$OUT")"

# 1. The base: a minimal bookworm with Python 3.11 and venv, as a rootfs tarball, then an image.
if [[ ! -s $BASE_TAR ]]; then
  log "debootstrap $SUITE ($BASE_PACKAGES) from $MIRROR"
  rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  # debootstrap mounts /proc and /sys inside the target: never delete through them.
  trap 'umount -R "$rootfs"/proc "$rootfs"/sys 2>/dev/null; rm -rf --one-file-system "$rootfs"' EXIT
  debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$MIRROR" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*
  # Fixed mtimes and owners' numeric ids keep the tarball (and the base's layer digest) stable.
  tar --numeric-owner --sort=name --mtime=@0 -C "$rootfs" -cf "$BASE_TAR.part" .
  mv "$BASE_TAR.part" "$BASE_TAR"
  rm -rf --one-file-system "$rootfs"
  trap - EXIT
fi
if ! buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  log "importing $BASE_TAR as $BASE_IMAGE"
  container=$(buildah from scratch)
  buildah add --quiet "$container" "$BASE_TAR" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd python3 "$container"
  buildah commit --quiet --rm "$container" "$BASE_IMAGE" >/dev/null
fi

# 2. The wheelhouse: every dependency (and pip, wheel, setuptools for the build) as wheels.
key=$( (cat pyproject.toml; echo "$EXTRAS") | sha256sum | cut -c1-12)
WHEELS="$CACHE/wheels-$key"
if [[ ! -e $WHEELS/.complete ]]; then
  log "pip wheel of the project's dependencies into $WHEELS"
  rm -rf "$WHEELS"
  spec=.
  [[ -n $EXTRAS ]] && spec=".[${EXTRAS}]"
  "$PY" -m pip wheel --quiet --wheel-dir "$WHEELS" "$spec" pip wheel setuptools
  rm -f "$WHEELS"/falco_reporter-*.whl  # the build makes its own from the sources
  touch "$WHEELS/.complete"
fi

# 3. The image, from the unchanged Dockerfile; the wheelhouse is mounted read-only into RUN steps.
log "buildah bud -t $IMAGE (base $BASE_IMAGE)"
buildah bud --quiet --isolation chroot --layers \
  --build-arg PYTHON_IMAGE="$BASE_IMAGE" --build-arg EXTRAS="$EXTRAS" \
  --build-arg WHEELHOUSE=/wheelhouse --volume "$WHEELS:/wheelhouse:ro" \
  -t "$IMAGE" . >/dev/null
# Unnamed images left by earlier builds hold earlier code's virtualenvs (~250 MB each): keep only the
# newest, this build's builder stage, which the next build reuses while pyproject and code are unchanged.
buildah images --filter dangling=true --format '{{.Created}} {{.ID}}' | sort -rn | tail -n +2 |
  while read -r _ id; do buildah rmi "$id" >/dev/null 2>&1 || true; done
rm -f "$OUT"
buildah push --quiet "$IMAGE" "docker-archive:$OUT:$IMAGE" >/dev/null
log "$IMAGE: $(buildah inspect --type image --format '{{.FromImageID}}' "$IMAGE" | cut -c1-12)," \
  "archive $(du -m "$OUT" | cut -f1) MB"
echo "$OUT"

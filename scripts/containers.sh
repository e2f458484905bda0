#!/usr/bin/env bash
# Container tooling for the rehearsal (tests/test_containers.py, marker `container`) from Debian
# packages and PyPI only: podman + runc, debootstrap, podman-compose (pinned in
# requirements/containers.txt), and local stand-ins for the public base images, built from
# Debian packages with debootstrap and kept between runs (rebuilt only when missing or when
# their recipe in containers/bases/ changed).
#
#   scripts/containers.sh setup   # install podman, runc, debootstrap; podman-compose into .venv
#   scripts/containers.sh bases   # build the missing base images
#   scripts/containers.sh image   # build the service image (Dockerfile) on the local bases
#   scripts/containers.sh env     # the variables podman and compose need:  eval "$(scripts/containers.sh env)"
#   scripts/containers.sh all     # setup + bases + image
#
# podman runs as root here without systemd: containers/containers.conf (runc, cgroupfs, file
# events, bounded ulimits) is used through CONTAINERS_CONF; /etc/containers is left alone.
# Builds use chroot isolation and see the machine's CA certificates (read-only), which package
# downloads inside a build need where an egress proxy re-signs TLS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BASE_PREFIX="${BASE_IMAGE_PREFIX:-localhost/persistence-base}"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SERVICE_IMAGE="${PERSISTENCE_IMAGE:-localhost/persistence-service:rehearsal}"

export CONTAINERS_CONF="$ROOT/containers/containers.conf"
export BUILDAH_ISOLATION=chroot

log() { echo "containers: $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else
    log "root is needed to install packages and run podman"
    return 1
  fi
}

print_env() {
  cat <<EOF
export CONTAINERS_CONF='$CONTAINERS_CONF'
export BUILDAH_ISOLATION=chroot
export PYTHON_IMAGE='$BASE_PREFIX/python:3.11-slim'
export PYTHON_BUILD_IMAGE='$BASE_PREFIX/python:3.11-build'
export MARIADB_IMAGE='$BASE_PREFIX/mariadb:10.11'
export REDIS_IMAGE='$BASE_PREFIX/redis:7'
export PERSISTENCE_IMAGE='$SERVICE_IMAGE'
export PODMAN_COMPOSE='$ROOT/.venv/bin/podman-compose'
EOF
}

setup() {
  local missing=()
  for p in podman runc debootstrap conmon netavark aardvark-dns; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  [ -x .venv/bin/python ] || python3 -m venv .venv
  local stamp=.venv/.requirements-containers
  if [ ! -f "$stamp" ] || [ requirements/containers.txt -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements/containers.txt
    touch "$stamp"
  fi
  podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}' >/dev/null \
    || { log "podman does not run here: podman info failed"; return 1; }
}

recipe_hash() {  # recipe_hash FILE... : what a base image is built from
  cat "$@" "$0" | sha256sum | cut -c1-16
}

image_current() {  # image_current TAG HASH : the tag exists and was built from this recipe
  [ "$(podman image inspect --format '{{ index .Labels "persistence.recipe" }}' "$1" 2>/dev/null)" = "$2" ]
}

build_base() {  # build_base TAG CONTAINERFILE FROM-TAG EXTRA-FILES...
  local tag=$1 file=$2 from=$3
  shift 3
  local hash
  hash=$(recipe_hash "containers/bases/$file" "$@")
  if image_current "$tag" "$hash"; then return 0; fi
  log "building $tag"
  podman build -q --pull=never --layers=false \
    --build-arg "BASE=$from" --label "persistence.recipe=$hash" \
    -f "containers/bases/$file" -t "$tag" containers/bases >/dev/null
}

debian_base() (  # a minimal Debian from Debian's own packages (debootstrap), imported as an image
  tag="$BASE_PREFIX/debian:$DEBIAN_SUITE"
  hash=$(echo "$DEBIAN_SUITE $DEBIAN_MIRROR minbase" | sha256sum | cut -c1-16)
  if image_current "$tag" "$hash"; then exit 0; fi
  log "debootstrap $DEBIAN_SUITE (minbase) from $DEBIAN_MIRROR"
  rootfs=$(mktemp -d /var/tmp/persistence-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >/dev/null
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb http://deb.debian.org/debian-security $DEBIAN_SUITE-security main
EOF
  # Like the official images: no recommends, no docs, no apt caches in layers.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$rootfs/etc/apt/apt.conf.d/90container"
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/90container"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' \
    --change "LABEL persistence.recipe=$hash" - "$tag" >/dev/null
)

bases() {
  local debian="$BASE_PREFIX/debian:$DEBIAN_SUITE" slim="$BASE_PREFIX/python:3.11-slim"
  debian_base
  build_base "$slim" python-slim.Containerfile "$debian"
  build_base "$BASE_PREFIX/python:3.11-build" python-build.Containerfile "$slim"
  build_base "$BASE_PREFIX/mariadb:10.11" mariadb.Containerfile "$debian" \
    containers/bases/mariadb-entrypoint.sh containers/bases/mariadb-healthcheck.sh
  build_base "$BASE_PREFIX/redis:7" redis.Containerfile "$debian" containers/bases/redis-entrypoint.sh
}

image() {  # the service image, built once; compose's services all run it (no build there)
  log "building $SERVICE_IMAGE"
  podman build -q --pull=never --format docker -v /etc/ssl/certs:/etc/ssl/certs:ro \
    --build-arg "PYTHON_IMAGE=$BASE_PREFIX/python:3.11-slim" \
    --build-arg "PYTHON_BUILD_IMAGE=$BASE_PREFIX/python:3.11-build" \
    -t "$SERVICE_IMAGE" . >/dev/null
}

case "${1:-all}" in
  setup) setup ;;
  bases) bases ;;
  image) image ;;
  env) print_env ;;
  all) setup && bases && image ;;
  *)
    echo "usage: $0 setup|bases|image|env|all" >&2
    exit 2
    ;;
esac

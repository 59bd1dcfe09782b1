#!/usr/bin/env bash
# The pinned binaries of the test cluster (tools/cluster/cluster.sh), built from the Go
# module proxy into .tools/cluster/bin. Each is rebuilt only when its pinned version (or
# this script) changed: a warm machine skips everything.
#
#   Kubernetes  kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
#               kube-proxy, kubectl (tools/cluster/kubernetes: a module that replaces the
#               staging modules by their published versions; version stamped at link time)
#   etcd        tools/cluster/etcd (the same for etcd's sibling modules)
#   containerd  containerd, containerd-shim-runc-v2, ctr (go install)
#   CoreDNS     coredns (go install)
#   crictl      cri-tools (go install)
#   pause       tools/cluster/pause: the process of every pod sandbox
#
# runc and the CNI plugins come from Debian (tools/cluster/cluster.sh install).
set -euo pipefail

KUBERNETES_VERSION=v1.36.3
CONTAINERD_VERSION=v2.4.2
COREDNS_VERSION=v1.15.0
CRICTL_VERSION=v1.37.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/.tools/cluster/bin"
stamps="$root/.tools/cluster/stamps"
mkdir -p "$bin" "$stamps"

say() { printf 'cluster-build: %s\n' "$*" >&2; }

command -v go >/dev/null || { say "Go is needed (go build through the Go module proxy)"; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# step NAME KEY COMMAND...: run COMMAND unless the stamp of NAME already holds KEY.
step() {
    local name="$1" key="$2"
    shift 2
    if [[ "$(cat "$stamps/$name" 2>/dev/null)" == "$key" ]]; then return; fi
    say "building $name (a few minutes the first time)"
    "$@"
    echo "$key" >"$stamps/$name"
}

kubernetes() {
    local minor="${KUBERNETES_VERSION#v1.}"
    minor="${minor%%.*}"
    local flags="-s -w"
    for package in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        flags+=" -X $package.gitVersion=$KUBERNETES_VERSION -X $package.gitMajor=1"
        flags+=" -X $package.gitMinor=$minor -X $package.gitTreeState=clean"
    done
    (cd "$here/kubernetes" && go build -trimpath -ldflags "$flags" -o "$bin/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl)
}

etcd() {
    (cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3)
}

containerd() {
    local module=github.com/containerd/containerd/v2
    GOBIN="$bin" go install -trimpath -tags no_btrfs -ldflags "-s -w" \
        "$module/cmd/containerd@$CONTAINERD_VERSION" \
        "$module/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
        "$module/cmd/ctr@$CONTAINERD_VERSION"
}

coredns() {
    GOBIN="$bin" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
}

crictl() {
    GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
}

pause() {
    (cd "$here/pause" && go build -trimpath -ldflags "-s -w" -o "$bin/pause" .)
}

# The key of a step: the pinned version and the files it is built from.
key() { cat "$@" 2>/dev/null | sha256sum | cut -d' ' -f1; }

step kubernetes "$(key "$here/kubernetes/go.mod" "$here/kubernetes/go.sum" "$0")" kubernetes
step etcd "$(key "$here/etcd/go.mod" "$here/etcd/go.sum")" etcd
step containerd "$CONTAINERD_VERSION" containerd
step coredns "$COREDNS_VERSION" coredns
step crictl "$CRICTL_VERSION" crictl
step pause "$(key "$here/pause/main.go" "$here/pause/go.mod")" pause
say "Kubernetes $KUBERNETES_VERSION, containerd $CONTAINERD_VERSION, CoreDNS $COREDNS_VERSION, crictl $CRICTL_VERSION: ready in $bin"

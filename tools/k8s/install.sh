#!/usr/bin/env bash
# Pinned tools that check the Helm chart offline, installed into .tools/ (idempotent: a tool
# already at its pinned version is kept).
#
#   helm         built from source through the Go module proxy (go install)
#   kubeconform  built from source through the Go module proxy
#   checkov      from PyPI, in its own virtualenv .tools/checkov (the Kubernetes linter),
#                with the dependencies pinned in checkov-requirements.txt
#   Kubernetes JSON schemas of one Kubernetes release, made from the OpenAPI spec in that
#                release's Go module (api/openapi-spec/swagger.json) by openapi2jsonschema.py
#
# Needs Go (>= the helm module's go directive) and Python 3.11. The CRD schemas are not made
# here: they are kept in tests/k8s-schemas/ (tools/k8s/crd-schemas.sh regenerates them).
set -euo pipefail

HELM_VERSION=v4.3.1
KUBECONFORM_VERSION=v0.8.0
CHECKOV_VERSION=3.3.30
KUBERNETES_VERSION=v1.36.3

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
tools="$root/.tools"
bin="$tools/bin"
python="${PYTHON:-python3}"
schemas="$tools/k8s-schemas/$KUBERNETES_VERSION-standalone-strict"

say() { printf 'k8s-tools: %s\n' "$*" >&2; }

need_go() {
    command -v go >/dev/null || { say "Go is needed to build $1 (go install)"; exit 1; }
}

# The module version and link flags a Go binary was built with ("" when absent).
built_with() {
    [[ -x "$1" ]] && command -v go >/dev/null || return 0
    go version -m "$1" 2>/dev/null | awk -v mod="$2" '
        $1 == "mod" && $2 == mod { version = $3 }
        $1 == "build" && $2 ~ /^-ldflags=/ { sub(/^[ \t]*build[ \t]+-ldflags=/, ""); flags = $0 }
        END { print version " " flags }'
}

go_tool() {
    local name="$1" module="$2" package="$3" version="$4" ldflags="-s -w ${5:-}"
    ldflags="${ldflags% }"
    if [[ "$(built_with "$bin/$name" "$module")" == "$version \"$ldflags\"" ]]; then return; fi
    need_go "$name"
    say "building $name $version (go install; a few minutes the first time)"
    GOBIN="$bin" GOFLAGS=-mod=mod CGO_ENABLED=0 \
        go install -ldflags "$ldflags" "$package@$version"
}

checkov() {
    local venv="$tools/checkov"
    if [[ "$("$venv/bin/checkov" --version 2>/dev/null || true)" == "$CHECKOV_VERSION" ]]; then return; fi
    say "installing checkov $CHECKOV_VERSION from PyPI into $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # Every dependency pinned as tested: a new release of one of them cannot change the linter.
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/checkov-requirements.txt"
    [[ "$("$venv/bin/checkov" --version)" == "$CHECKOV_VERSION" ]] \
        || { say "$here/checkov-requirements.txt does not pin checkov $CHECKOV_VERSION"; exit 1; }
}

kubernetes_schemas() {
    if [[ -f "$schemas/.complete" ]]; then return; fi
    need_go "the Kubernetes schemas (go mod download)"
    say "making the Kubernetes $KUBERNETES_VERSION JSON schemas from its OpenAPI spec"
    local module
    module="$(cd "$tools" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
        | "$python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
    rm -rf "$schemas"
    "$python" "$here/openapi2jsonschema.py" kubernetes "$module/api/openapi-spec/swagger.json" "$schemas"
    touch "$schemas/.complete"
}

mkdir -p "$bin"
# The link flag of helm's own release build: its version. Helm 4 takes the Kubernetes
# version it assumes when no cluster is asked from its client-go (v0.36 -> 1.36).
go_tool helm helm.sh/helm/v4 helm.sh/helm/v4/cmd/helm "$HELM_VERSION" \
    "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
go_tool kubeconform github.com/yannh/kubeconform github.com/yannh/kubeconform/cmd/kubeconform \
    "$KUBECONFORM_VERSION"
checkov
kubernetes_schemas
say "helm $HELM_VERSION, kubeconform $KUBECONFORM_VERSION, checkov $CHECKOV_VERSION, Kubernetes $KUBERNETES_VERSION schemas: ready"

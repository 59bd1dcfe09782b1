#!/usr/bin/env bash
# Regenerate the CRD schemas kept in tests/k8s-schemas/ (see its README) from the published
# CustomResourceDefinitions of pinned operator releases:
#   prometheus-operator and KEDA: their Go module zips (Go module proxy, checked against sum.golang.org);
#   Strimzi: the CRD files of the release kept in tests/k8s-crds/strimzi-<version>/ (Strimzi
#   publishes them with its releases only, in no registry that answers here); the real
#   cluster of the tests installs the same files (tools/cluster/crds.sh).
#
#   tools/k8s/crd-schemas.sh
set -euo pipefail

PROMETHEUS_OPERATOR_VERSION=v0.89.0
KEDA_VERSION=v2.20.2
STRIMZI_VERSION=1.2.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/tests/k8s-schemas"
python="${PYTHON:-$root/.venv/bin/python}"

module_dir() {
    # The extracted module directory of a Go module version, downloaded if needed.
    (cd "$root" && GOFLAGS=-mod=mod go mod download -json "$1@$2") \
        | "$python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}

strimzi="$root/tests/k8s-crds/strimzi-$STRIMZI_VERSION"

prometheus="$(module_dir github.com/prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION")"
keda="$(module_dir github.com/kedacore/keda/v2 "$KEDA_VERSION")"

rm -rf "$out/monitoring.coreos.com" "$out/keda.sh" "$out/kafka.strimzi.io"
"$python" "$here/openapi2jsonschema.py" crd "$out" \
    "$prometheus/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" \
    "$prometheus/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml" \
    "$prometheus/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml" \
    "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" \
    "$keda/config/crd/bases/keda.sh_triggerauthentications.yaml" \
    "$strimzi/040-Crd-kafka.yaml" \
    "$strimzi/043-Crd-kafkatopic.yaml" \
    "$strimzi/044-Crd-kafkauser.yaml" \
    "$strimzi/045-Crd-kafkanodepool.yaml"

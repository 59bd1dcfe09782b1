#!/usr/bin/env bash
# Install into the cluster of KUBECONFIG the CustomResourceDefinitions the chart's modes
# use, from the same pinned releases as the chart's schemas (tools/k8s/crd-schemas.sh):
#   Strimzi 1.2.0           tests/k8s-crds/strimzi-1.2.0/ (its release files)
#   KEDA v2.20.2            config/crd/bases/ of its Go module
#   prometheus-operator     example/prometheus-operator-crd/ of its Go module (v0.89.0)
# Server-side apply: Strimzi's Kafka CRD is larger than client-side apply's annotation.
set -euo pipefail

PROMETHEUS_OPERATOR_VERSION=v0.89.0
KEDA_VERSION=v2.20.2
STRIMZI_VERSION=1.2.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
export PATH="$root/.tools/cluster/bin:$PATH"
export KUBECONFIG="${KUBECONFIG:-$root/.tools/cluster/state/admin.kubeconfig}"

module_dir() {
    (cd "$root" && GOFLAGS=-mod=mod go mod download -json "$1@$2") \
        | "$python" -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}

keda="$(module_dir github.com/kedacore/keda/v2 "$KEDA_VERSION")"
prometheus="$(module_dir github.com/prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION")"
files=(
    "$root/tests/k8s-crds/strimzi-$STRIMZI_VERSION/"*.yaml
    "$keda/config/crd/bases/keda.sh_scaledobjects.yaml"
    "$keda/config/crd/bases/keda.sh_triggerauthentications.yaml"
    "$prometheus/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
    "$prometheus/example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml"
    "$prometheus/example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"
)
for file in "${files[@]}"; do
    kubectl apply --server-side --force-conflicts -f "$file" >/dev/null
done
kubectl wait --for=condition=Established --timeout=60s \
    crd/kafkas.kafka.strimzi.io crd/kafkanodepools.kafka.strimzi.io \
    crd/kafkatopics.kafka.strimzi.io crd/kafkausers.kafka.strimzi.io \
    crd/scaledobjects.keda.sh crd/triggerauthentications.keda.sh \
    crd/servicemonitors.monitoring.coreos.com crd/podmonitors.monitoring.coreos.com \
    crd/prometheusrules.monitoring.coreos.com >/dev/null
echo "CRDs of Strimzi $STRIMZI_VERSION, KEDA $KEDA_VERSION and prometheus-operator $PROMETHEUS_OPERATOR_VERSION: established"

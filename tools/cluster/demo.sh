#!/usr/bin/env bash
# The whole stack on the local cluster for a person to try (`make cluster-demo`, after which
# the cluster is up with the images loaded): the chart with the dev values in the namespace
# quax-demo (restricted Pod Security), the synthetic DAQ at the real rate, and the dashboard
# on http://127.0.0.1:8000 through kubectl port-forward. Ctrl-C ends the port-forward; the
# release stays until `make cluster-down` (or `helm uninstall quax -n quax-demo`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
namespace="${QUAX_DEMO_NAMESPACE:-quax-demo}"
port="${QUAX_DEMO_PORT:-8000}"
export PATH="$root/.tools/cluster/bin:$root/.tools/bin:$PATH"
export KUBECONFIG="$root/.tools/cluster/state/admin.kubeconfig"

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
kubectl label --overwrite namespace "$namespace" \
    pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
echo "cluster-demo: installing the chart (dev values) in $namespace; the first start takes a few minutes"
helm upgrade --install quax "$root/helm/quax-stream" -n "$namespace" \
    -f "$root/helm/quax-stream/values-dev.yaml" --wait --timeout 15m
kubectl -n "$namespace" get pods
cat <<EOF
cluster-demo: the dashboard is on http://127.0.0.1:$port (Ctrl-C stops the port-forward)
  kubectl and helm:   export KUBECONFIG=$KUBECONFIG PATH=$root/.tools/cluster/bin:$root/.tools/bin:\$PATH
  scale the workers:  kubectl -n $namespace scale deployment/quax-fft-worker --replicas=4
  remove it all:      make cluster-down
EOF
exec kubectl -n "$namespace" port-forward --address 127.0.0.1 svc/quax-api "$port:8000"

#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, for the chart's tests and for trying the
# chart by hand: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd
# (with Debian's runc), a kubelet, kube-proxy (iptables), a CNI bridge (Debian's plugins)
# and CoreDNS as a Deployment. Needs root.
#
#   cluster.sh install       Debian packages it uses (runc, CNI plugins, iptables, openssl)
#   cluster.sh up            build or reuse the binaries, start everything, wait for a Ready node
#   cluster.sh load TAR...   import image archives (docker-archive) into the node's containerd
#   cluster.sh down          stop everything and leave the host as it was found
#   cluster.sh status        say whether it runs
#   cluster.sh env           print the KUBECONFIG export for a shell
#
# Everything lives in .tools/cluster/: bin/ (the binaries, kept), state/ (certificates,
# etcd, containerd, kubelet; removed by down), logs/ (kept for reading after down).
# What the host has before up (sysctls, iptables chains, network namespaces, the CNI
# state folder) is recorded and put back by down. docs/kubernetes.md tells more.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
home="$root/.tools/cluster"
bin="$home/bin"
state="$home/state"
logs="$home/logs"
pki="$state/pki"
NODE=quax-node
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
POD_CIDR=10.244.0.0/16
POD_SUBNET=10.244.0.0/24
BRIDGE=quaxbr0
SANDBOX_IMAGE=registry.k8s.io/pause:3.10.2
COREDNS_IMAGE=quax-cluster/coredns:1.15.0
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward
    net.bridge.bridge-nf-call-iptables)
export PATH="$bin:$PATH"
export KUBECONFIG="$state/admin.kubeconfig"
export CONTAINERS_CONF="$root/tools/containers/containers.conf"
export CONTAINERS_STORAGE_CONF="$root/.tools/containers/storage.conf"
containerd_socket="$state/containerd/containerd.sock"

say() { printf 'cluster: %s\n' "$*" >&2; }

install() {
    local missing=()
    [[ -x /usr/sbin/runc ]] || missing+=(runc)
    [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
    command -v iptables >/dev/null || missing+=(iptables)
    command -v conntrack >/dev/null || missing+=(conntrack)
    command -v openssl >/dev/null || missing+=(openssl)
    [[ ${#missing[@]} -eq 0 ]] && return
    say "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
}

host_ip() { ip -4 route get 1.1.1.1 | awk '{ for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1) }'; }

# --- certificates ------------------------------------------------------------------------

# cert NAME SUBJECT [SANS]: a key and a certificate signed by the cluster's CA.
cert() {
    local name="$1" subject="$2" sans="${3:-}"
    openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subject" \
        -out "$pki/$name.csr" 2>/dev/null
    local ext="$pki/$name.ext"
    echo "basicConstraints=CA:FALSE" >"$ext"
    echo "keyUsage=critical,digitalSignature,keyEncipherment" >>"$ext"
    echo "extendedKeyUsage=serverAuth,clientAuth" >>"$ext"
    [[ -n "$sans" ]] && echo "subjectAltName=$sans" >>"$ext"
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
        -CAcreateserial -days 30 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
    rm -f "$pki/$name.csr" "$ext"
}

# kubeconfig NAME: a kubeconfig that authenticates with the certificate NAME.
kubeconfig() {
    local name="$1" file="$state/$1.kubeconfig"
    kubectl config set-cluster quax --server="https://$(host_ip):6443" \
        --certificate-authority="$pki/ca.crt" --embed-certs --kubeconfig="$file" >/dev/null
    kubectl config set-credentials "$name" --client-certificate="$pki/$name.crt" \
        --client-key="$pki/$name.key" --embed-certs --kubeconfig="$file" >/dev/null
    kubectl config set-context quax --cluster=quax --user="$name" --kubeconfig="$file" >/dev/null
    kubectl config use-context quax --kubeconfig="$file" >/dev/null
}

certificates() {
    mkdir -p "$pki"
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -days 30 \
        -subj "/CN=quax-cluster-ca" -out "$pki/ca.crt" 2>/dev/null
    openssl genrsa -out "$pki/service-accounts.key" 2048 2>/dev/null
    openssl rsa -in "$pki/service-accounts.key" -pubout -out "$pki/service-accounts.pub" 2>/dev/null
    local ip
    ip="$(host_ip)"
    cert apiserver "/CN=kube-apiserver" "IP:$ip,IP:127.0.0.1,IP:$API_SERVICE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    cert admin "/O=system:masters/CN=quax-admin"
    cert controller-manager "/CN=system:kube-controller-manager"
    cert scheduler "/CN=system:kube-scheduler"
    cert kube-proxy "/CN=system:kube-proxy"
    cert kubelet "/O=system:nodes/CN=system:node:$NODE" "IP:$ip,DNS:$NODE"
    for name in admin controller-manager scheduler kube-proxy kubelet; do kubeconfig "$name"; done
}

# --- processes ---------------------------------------------------------------------------

# start NAME COMMAND...: run a daemon in its own session, its output in logs/NAME.log.
start() {
    local name="$1"
    shift
    setsid nohup "$@" >"$logs/$name.log" 2>&1 </dev/null &
    echo $! >"$state/$name.pid"
}

# Whether the daemon NAME runs (a process that died but is not yet reaped does not).
running() {
    local pid
    [[ -f "$state/$1.pid" ]] || return 1
    pid="$(cat "$state/$1.pid")"
    [[ -r "/proc/$pid/stat" && "$(awk '{ print $3 }' "/proc/$pid/stat")" != Z ]]
}

# wait_for WHAT SECONDS COMMAND...: retry COMMAND until it succeeds.
wait_for() {
    local what="$1" deadline=$((SECONDS + $2))
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            say "$what did not come up within the time allowed; the logs are in $logs"
            return 1
        fi
        sleep 0.5
    done
}

stop() {
    local name="$1" pid
    [[ -f "$state/$name.pid" ]] || return 0
    pid="$(cat "$state/$name.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$state/$name.pid"
}

# --- host state that up changes and down restores ------------------------------------------

record_host() {
    local sysctl
    : >"$state/sysctls"
    for sysctl in "${SYSCTLS[@]}"; do
        echo "$sysctl=$(sysctl -n "$sysctl")" >>"$state/sysctls"
    done
    [[ -d /var/lib/cni ]] && touch "$state/had-var-lib-cni"
    ls /var/run/netns 2>/dev/null >"$state/netns" || true
}

restore_host() {
    local line
    if [[ -f "$state/sysctls" ]]; then
        while read -r line; do sysctl -q -w "$line" >/dev/null || true; done <"$state/sysctls"
    fi
    # Network namespaces, iptables chains, the bridge and the CNI folder the cluster made.
    local netns
    for netns in $(ls /var/run/netns 2>/dev/null); do
        if ! grep -qx "$netns" "$state/netns" 2>/dev/null; then
            umount "/var/run/netns/$netns" 2>/dev/null || true
            rm -f "/var/run/netns/$netns"
        fi
    done
    kube-proxy --cleanup >/dev/null 2>&1 || true
    local table chain
    for table in nat filter mangle; do
        # Rules that jump to the cluster's chains, then the chains themselves.
        local rules
        rules="$(iptables -t "$table" -S 2>/dev/null | { grep -E '^-A .* -j (KUBE-|CNI-)' || true; })"
        while read -r rule; do
            [[ -n "$rule" ]] && { eval "iptables -t $table ${rule/#-A/-D}" 2>/dev/null || true; }
        done <<<"$rules"
        for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ { print $2 }'); do
            iptables -t "$table" -F "$chain" 2>/dev/null || true
        done
        for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/ { print $2 }'); do
            iptables -t "$table" -X "$chain" 2>/dev/null || true
        done
    done
    ip link delete "$BRIDGE" 2>/dev/null || true
    [[ -f "$state/had-var-lib-cni" ]] || rm -rf /var/lib/cni
}

# Unmount whatever is still mounted under the cluster's folders (deepest first).
unmount_all() {
    local mount
    awk -v prefix="$state/" 'index($2, prefix) == 1 { print $2 }' /proc/mounts | sort -r \
        | while read -r mount; do umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true; done
}

# The kubelet's cgroups (kubepods) in every hierarchy, deepest first.
remove_cgroups() {
    local hierarchy
    for hierarchy in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
        [[ -d "$hierarchy/kubepods" || -d "$hierarchy/kubepods.slice" ]] || continue
        find "$hierarchy"kubepods* -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
}

# --- configuration -------------------------------------------------------------------------

write_configs() {
    mkdir -p "$state/cni" "$state/containerd" "$state/kubelet"
    cat >"$state/cni/10-quax.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "quax",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$state/cni/ipam",
        "ranges": [[{ "subnet": "$POD_SUBNET" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "loopback" }
  ]
}
EOF
    cat >"$state/containerd/config.toml" <<EOF
version = 3
root = "$state/containerd/root"
state = "$state/containerd/state"

[grpc]
  address = "$containerd_socket"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '$SANDBOX_IMAGE'

[plugins.'io.containerd.cri.v1.runtime']
  # A negative oom_score_adj needs CAP_SYS_RESOURCE, which this VM does not give.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '$state/cni'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = '/usr/sbin/runc'
      SystemdCgroup = false
EOF
    cat >"$state/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $(host_ip)
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $pki/ca.crt
authorization:
  mode: Webhook
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
containerRuntimeEndpoint: unix://$containerd_socket
cgroupDriver: cgroupfs
# This VM: cgroup v1, swap allowed, no CAP_SYS_RESOURCE for a negative oom_score_adj.
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
healthzBindAddress: 127.0.0.1
# A test node on a shared disk: evict only when it is really full.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  imagefs.available: 2%
imageGCHighThresholdPercent: 100
maxPods: 60
EOF
    cat >"$state/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $state/kube-proxy.kubeconfig
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables:
  localhostNodePorts: false
# Leave the host's conntrack settings as they are.
conntrack:
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# --- images of the cluster itself ------------------------------------------------------------

# podman builds the pause and CoreDNS images (FROM scratch, one static binary each); the
# node imports them as the names its configuration uses.
cluster_images() {
    local dir="$state/images"
    mkdir -p "$dir/pause" "$dir/coredns"
    cp "$bin/pause" "$dir/pause/"
    printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$dir/pause/Containerfile"
    cp "$bin/coredns" "$dir/coredns/"
    printf 'FROM scratch\nCOPY coredns /coredns\nUSER 65532:65532\nENTRYPOINT ["/coredns"]\n' \
        >"$dir/coredns/Containerfile"
    "$root/tools/containers/images.sh" install
    local name image
    for name in pause coredns; do
        image="$SANDBOX_IMAGE"
        [[ "$name" == coredns ]] && image="$COREDNS_IMAGE"
        podman build --quiet --pull=never -t "$image" "$dir/$name" >/dev/null
        podman save --quiet --format docker-archive -o "$dir/$name.tar" "$image"
        load "$dir/$name.tar"
    done
}

load() {
    local archive
    for archive in "$@"; do
        ctr --address "$containerd_socket" -n k8s.io images import "$archive" >/dev/null 2>"$logs/ctr.log" \
            || { cat "$logs/ctr.log" >&2; return 1; }
    done
    # podman names images of no registry localhost/<name>; the kubelet asks for the name a
    # pod gives as Docker normalises it: docker.io/library/<name>, or docker.io/<org>/<name>.
    local name short
    for name in $(ctr --address "$containerd_socket" -n k8s.io images ls -q 2>/dev/null | { grep '^localhost/' || true; }); do
        short="${name#localhost/}"
        [[ "$short" == */* ]] || short="library/$short"
        ctr --address "$containerd_socket" -n k8s.io images tag --force "$name" \
            "docker.io/$short" >/dev/null 2>&1
    done
}

# PersistentVolumes for the claims of StatefulSets (the node has no provisioner): folders
# under state/volumes that any pod user may write, of no storage class, so that a claim
# that names no class binds to one.
volumes() {
    local n
    for n in 1 2 3 4; do
        mkdir -p "$state/volumes/pv$n"
        chmod 0777 "$state/volumes/pv$n"
        cat <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: quax-node-pv$n
spec:
  capacity:
    storage: 20Gi
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath:
    path: $state/volumes/pv$n
    type: Directory
---
EOF
    done | kubectl apply -f - >/dev/null
}

# --- up / down -----------------------------------------------------------------------------

up() {
    if running kube-apiserver; then say "already running"; return; fi
    install
    "$here/build.sh"
    # What a cluster that ended without `down` left behind (mounts, rules, sysctls) first.
    [[ -d "$state" ]] && down
    rm -rf "$state"
    mkdir -p "$state" "$logs"
    rm -f "$logs"/*.log
    record_host
    certificates
    write_configs
    local ip
    ip="$(host_ip)"
    sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1

    start etcd etcd --name quax --data-dir "$state/etcd" \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster quax=http://127.0.0.1:2380 --listen-metrics-urls '' --log-level warn
    start containerd containerd --config "$state/containerd/config.toml"
    start kube-apiserver kube-apiserver --etcd-servers=http://127.0.0.1:2379 \
        --bind-address="$ip" --advertise-address="$ip" --secure-port=6443 \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --client-ca-file="$pki/ca.crt" \
        --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
        --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$pki/service-accounts.pub" \
        --service-account-signing-key-file="$pki/service-accounts.key" \
        --kubelet-preferred-address-types=InternalIP,Hostname \
        --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
        --anonymous-auth=false --allow-privileged=true --profiling=false
    wait_for "containerd" 30 ctr --address "$containerd_socket" version
    wait_for "the API server" 60 kubectl get --raw /readyz
    start kube-controller-manager kube-controller-manager \
        --kubeconfig="$state/controller-manager.kubeconfig" \
        --authentication-kubeconfig="$state/controller-manager.kubeconfig" \
        --authorization-kubeconfig="$state/controller-manager.kubeconfig" \
        --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials \
        --service-account-private-key-file="$pki/service-accounts.key" --root-ca-file="$pki/ca.crt" \
        --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
        --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false
    start kube-scheduler kube-scheduler --kubeconfig="$state/scheduler.kubeconfig" \
        --authentication-kubeconfig="$state/scheduler.kubeconfig" \
        --authorization-kubeconfig="$state/scheduler.kubeconfig" \
        --bind-address=127.0.0.1 --leader-elect=false --profiling=false
    cluster_images
    start kubelet kubelet --config="$state/kubelet/config.yaml" \
        --kubeconfig="$state/kubelet.kubeconfig" --root-dir="$state/kubelet/root" \
        --cert-dir="$state/kubelet/pki" --hostname-override="$NODE" --node-ip="$ip"
    start kube-proxy kube-proxy --config="$state/kube-proxy.yaml"
    wait_for "the node" 120 kubectl wait --for=condition=Ready "node/$NODE" --timeout=2s
    sed -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|" -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|" \
        "$here/coredns.yaml" | kubectl apply -f - >/dev/null
    wait_for "CoreDNS" 120 kubectl -n kube-system rollout status deployment/coredns --timeout=2s
    volumes
    say "up: node $NODE Ready, Kubernetes $(kubectl version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1); KUBECONFIG=$KUBECONFIG"
}

down() {
    [[ -d "$state" ]] || { say "not running"; return; }
    say "stopping"
    # Pods first, through the runtime, so that CNI releases their addresses and rules.
    stop kubelet
    if [[ -S "$containerd_socket" ]]; then
        crictl --runtime-endpoint "unix://$containerd_socket" rmp --all --force >/dev/null 2>&1 || true
    fi
    local name
    for name in kube-proxy kube-scheduler kube-controller-manager kube-apiserver containerd etcd; do
        stop "$name"
    done
    # Shims and container processes left by a containerd that did not end cleanly.
    pkill -KILL -f "containerd-shim-runc-v2 .*-address $containerd_socket" 2>/dev/null || true
    unmount_all
    remove_cgroups
    restore_host
    rm -rf "$state"
    say "down; the host is as it was (logs kept in $logs)"
}

status() {
    if running kube-apiserver; then
        kubectl get nodes -o wide
    else
        say "not running"
        return 1
    fi
}

case "${1:-}" in
    install) install ;;
    up) up ;;
    down) down ;;
    load) shift; load "$@" ;;
    status) status ;;
    env) echo "export KUBECONFIG=$KUBECONFIG" ;;
    *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

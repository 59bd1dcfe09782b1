#!/usr/bin/env bash
# Debian's Prometheus (prometheus and promtool, 2.42 in bookworm) for the monitoring tests
# and for watching `make demo` locally. Idempotent; needs root, like any apt-get install.
#
# The package's maintainer scripts would start (and, under systemd, enable) a Prometheus
# on :9090. Nothing here wants a system-wide server: a policy-rc.d forbids the start, and
# whatever started anyway is stopped (and disabled under systemd) right after the install.
set -euo pipefail

if [[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]]; then
    exit 0
fi

policy=/usr/sbin/policy-rc.d
own_policy=false
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# Installed by tools/prometheus/install.sh while it runs apt-get.\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=true
fi
cleanup() {
    if $own_policy; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# Whatever the package may have started: systemd unit, SysV init script, or a bare process.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
if [[ -x /etc/init.d/prometheus ]]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi
pidfile=/run/prometheus/prometheus.pid
if [[ -s $pidfile ]]; then
    pid=$(<"$pidfile")
    if [[ $(ps -p "$pid" -o comm= 2>/dev/null) == prometheus ]]; then
        kill "$pid" 2>/dev/null || true
    fi
fi

/usr/bin/prometheus --version 2>&1 | head -n 1
/usr/bin/promtool --version 2>&1 | head -n 1

#!/usr/bin/env bash
# A local single-node Apache Kafka broker (KRaft, combined broker+controller) on 127.0.0.1.
#
#   kafka.sh install   resolve the broker's jars from Maven Central into tools/kafka/lib
#   kafka.sh start     format the storage folder if it is new, start the broker, wait until it answers
#   kafka.sh topics    create the project's topics (idempotent)
#   kafka.sh stop      stop the broker (SIGTERM, then SIGKILL after a grace period)
#   kafka.sh status    say whether it runs
#
# Settings (environment): QUAX_KAFKA_DIR (storage, logs and pid; default <repo>/.kafka),
# QUAX_KAFKA_PORT (client port, 9092), QUAX_KAFKA_CONTROLLER_PORT (9093),
# QUAX_KAFKA_HEAP (JVM heap, 512m), PYTHON (interpreter with the project installed).
#
# QUAX_KAFKA_SASL_SSL_DIR: serve clients over TLS with SCRAM-SHA-512 users instead of
# PLAINTEXT. The folder holds broker.pem (the broker's private key and certificate chain),
# ca.pem (what clients trust) and users (one "name password" per line; the first user is
# the broker's own, for its inter-broker connections); users are added when the storage
# is formatted. A client then needs QUAX_KAFKA_SECURITY_PROTOCOL=SASL_SSL, a user and
# password and QUAX_KAFKA_SSL_CAFILE=ca.pem (docs/security.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
lib="$here/lib"
dir="${QUAX_KAFKA_DIR:-$root/.kafka}"
port="${QUAX_KAFKA_PORT:-9092}"
controller_port="${QUAX_KAFKA_CONTROLLER_PORT:-9093}"
heap="${QUAX_KAFKA_HEAP:-512m}"
python="${PYTHON:-$root/.venv/bin/python}"
pidfile="$dir/kafka.pid"

say() { printf 'kafka: %s\n' "$*" >&2; }

install() {
    # .complete holds the checksum of the pom the jars were resolved from.
    local pom
    pom="$(sha256sum "$here/pom.xml" | cut -d' ' -f1)"
    if [[ "$(cat "$lib/.complete" 2>/dev/null)" == "$pom" ]]; then return; fi
    command -v mvn >/dev/null || { say "Maven (mvn) is needed to resolve the broker's jars"; exit 1; }
    command -v java >/dev/null || { say "a Java 17+ runtime is needed to run the broker"; exit 1; }
    say "resolving Apache Kafka from Maven Central into $lib"
    rm -rf "$lib"
    mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies
    echo "$pom" >"$lib/.complete"
}

running_pid() {
    [[ -f "$pidfile" ]] || return 1
    local pid
    pid="$(cat "$pidfile")"
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

secure="${QUAX_KAFKA_SASL_SSL_DIR:-}"
listener=PLAINTEXT
[[ -n "$secure" ]] && listener=SASL_SSL

write_config() {
    mkdir -p "$dir/data" "$dir/logs"
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=$listener://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=$listener://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=$listener
listener.security.protocol.map=CONTROLLER:PLAINTEXT,$listener:$listener
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Chunks are < 1 MiB by default; every limit on the path allows 2 MiB (quaxspec.topics).
message.max.bytes=2097152
replica.fetch.max.bytes=2097152
log.retention.check.interval.ms=60000
EOF
    if [[ -n "$secure" ]]; then
        local broker_user broker_password
        read -r broker_user broker_password <"$secure/users"
        cat >>"$dir/server.properties" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$broker_user" password="$broker_password";
ssl.keystore.type=PEM
ssl.keystore.location=$secure/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$secure/ca.pem
EOF
    fi
}

# --add-scram arguments of the storage format: one SCRAM-SHA-512 credential per user.
scram_users() {
    [[ -n "$secure" ]] || return 0
    local user password
    while read -r user password; do
        [[ -n "$user" ]] && printf -- '--add-scram\nSCRAM-SHA-512=[name=%s,password=%s]\n' "$user" "$password"
    done <"$secure/users"
}

java_cmd=(java -Xms128m "-Xmx$heap" -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$here/log4j2.xml" "-Dkafka.logs.dir=$dir/logs" -cp "$lib/*")

start() {
    install
    if pid="$(running_pid)"; then say "already running (pid $pid) on 127.0.0.1:$port"; return; fi
    write_config
    if [[ ! -f "$dir/data/meta.properties" ]]; then
        local cluster_id
        # Kafka's own ids never start with "-" (Uuid.randomUuid draws again): one that did
        # would be read as an option by the storage tool (1 start in 64 failed that way).
        cluster_id="$(python3 -c '
import base64, uuid
while (i := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
    pass
print(i)')"
        local -a scram
        mapfile -t scram < <(scram_users)
        "${java_cmd[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" "${scram[@]}" >"$dir/logs/format.log" 2>&1 \
            || { say "formatting $dir/data failed:"; cat "$dir/logs/format.log" >&2; exit 1; }
    fi
    say "starting on 127.0.0.1:$port (storage $dir)"
    # setsid: the broker gets its own session, so a Ctrl-C aimed at a caller does not kill it
    # half-way; `stop` ends it explicitly.
    setsid nohup "${java_cmd[@]}" kafka.Kafka "$dir/server.properties" \
        >"$dir/logs/stdout.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    wait_ready
}

wait_ready() {
    local deadline=$((SECONDS + ${QUAX_KAFKA_START_TIMEOUT:-90}))
    while ((SECONDS < deadline)); do
        if ! running_pid >/dev/null; then
            say "the broker exited while starting; last lines of its log:"
            tail -n 30 "$dir/logs/server.log" "$dir/logs/stdout.log" >&2 || true
            exit 1
        fi
        if grep -q "Kafka Server started" "$dir/logs/server.log" 2>/dev/null \
            && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            say "ready on 127.0.0.1:$port"
            return
        fi
        sleep 0.5
    done
    say "the broker did not answer within ${QUAX_KAFKA_START_TIMEOUT:-90} s"
    stop
    exit 1
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then say "not running"; rm -f "$pidfile"; return; fi
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; say "stopped"; return; }
        sleep 0.5
    done
    say "no clean stop after 30 s; killing pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

topics() {
    "$python" "$here/topics.py" --bootstrap "127.0.0.1:$port"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    topics) topics ;;
    status) if pid="$(running_pid)"; then say "running (pid $pid) on 127.0.0.1:$port"; else say "not running"; exit 1; fi ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

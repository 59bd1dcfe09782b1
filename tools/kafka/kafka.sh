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
    if [[ -f "$lib/.complete" ]]; then return; fi
    command -v mvn >/dev/null || { say "Maven (mvn) is needed to resolve the broker's jars"; exit 1; }
    command -v java >/dev/null || { say "a Java 17+ runtime is needed to run the broker"; exit 1; }
    say "resolving Apache Kafka from Maven Central into $lib"
    rm -rf "$lib"
    mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies
    touch "$lib/.complete"
}

running_pid() {
    [[ -f "$pidfile" ]] || return 1
    local pid
    pid="$(cat "$pidfile")"
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

write_config() {
    mkdir -p "$dir/data" "$dir/logs"
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
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
}

java_cmd=(java -Xms128m "-Xmx$heap" -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$here/log4j2.xml" "-Dkafka.logs.dir=$dir/logs" -cp "$lib/*")

start() {
    install
    if pid="$(running_pid)"; then say "already running (pid $pid) on 127.0.0.1:$port"; return; fi
    write_config
    if [[ ! -f "$dir/data/meta.properties" ]]; then
        local cluster_id
        cluster_id="$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')"
        "${java_cmd[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >"$dir/logs/format.log" 2>&1 \
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

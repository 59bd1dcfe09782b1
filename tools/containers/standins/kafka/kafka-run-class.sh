#!/usr/bin/env bash
# Run a class of Apache Kafka's jars (the stand-in's kafka-run-class.sh).
set -euo pipefail
log4j="${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=file:/etc/kafka/docker/tools-log4j2.yaml}"
# shellcheck disable=SC2086 # the options are lists of JVM flags
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -Djava.awt.headless=true} \
    ${KAFKA_OPTS:-} "$log4j" -Dkafka.logs.dir="${LOG_DIR:-/opt/kafka/logs}" -cp "/opt/kafka/libs/*" "$@"

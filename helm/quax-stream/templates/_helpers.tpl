{{/*
Chart name, truncated to the 63 characters of a DNS label.
*/}}
{{- define "quax-stream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name (objects are <release>-<component>, e.g. quax-api), or
fullnameOverride. Truncated so that "-<component>" still fits in 63 characters.
*/}}
{{- define "quax-stream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Name of one component's objects: (dict "root" $ "component" "fft-worker").
*/}}
{{- define "quax-stream.componentName" -}}
{{- printf "%s-%s" (include "quax-stream.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Chart label value: name-version.
*/}}
{{- define "quax-stream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels of the release.
*/}}
{{- define "quax-stream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "quax-stream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels of the release.
*/}}
{{- define "quax-stream.labels" -}}
helm.sh/chart: {{ include "quax-stream.chart" . }}
{{ include "quax-stream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: quax-stream
{{- end }}

{{/*
Selector labels of one component: (dict "root" $ "component" "api").
*/}}
{{- define "quax-stream.componentSelectorLabels" -}}
{{ include "quax-stream.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Labels of one component's objects: (dict "root" $ "component" "api").
*/}}
{{- define "quax-stream.componentLabels" -}}
{{ include "quax-stream.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Name of the ServiceAccount of every pod.
*/}}
{{- define "quax-stream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "quax-stream.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image of a component: (dict "root" $ "image" .Values.api.image); the tag defaults to appVersion.
*/}}
{{- define "quax-stream.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{/*
Kafka bootstrap servers of the chosen mode. In-cluster addresses are fully qualified: KEDA's
operator resolves them from its own namespace.
*/}}
{{- define "quax-stream.kafka.bootstrapServers" -}}
{{- $kafka := .Values.kafka }}
{{- $suffix := printf "%s.svc.%s" .Release.Namespace .Values.clusterDomain }}
{{- if eq $kafka.mode "internal" }}
{{- printf "%s.%s:9092" (include "quax-stream.componentName" (dict "root" . "component" "kafka")) $suffix }}
{{- else if eq $kafka.mode "external" }}
{{- required "kafka.external.bootstrapServers is required when kafka.mode is external (host:port of the brokers, comma-separated)" $kafka.external.bootstrapServers }}
{{- else if and (eq $kafka.mode "strimzi") (include "quax-stream.kafka.authenticated" .) }}
{{- printf "%s-kafka-bootstrap.%s:9093" (include "quax-stream.kafka.strimziCluster" .) $suffix }}
{{- else if eq $kafka.mode "strimzi" }}
{{- printf "%s-kafka-bootstrap.%s:9092" (include "quax-stream.kafka.strimziCluster" .) $suffix }}
{{- else }}
{{- fail (printf "kafka.mode must be internal, external or strimzi, not %q" $kafka.mode) }}
{{- end }}
{{- end }}

{{/*
The internal broker's probe: a TCP connection to its listener from inside the container.
*/}}
{{- define "quax-stream.kafka.probeCommand" -}}
["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9092"]
{{- end }}

{{/*
Name of the Strimzi Kafka resource.
*/}}
{{- define "quax-stream.kafka.strimziCluster" -}}
{{- default (include "quax-stream.fullname" .) .Values.kafka.strimzi.clusterName | trunc 40 | trimSuffix "-" }}
{{- end }}

{{/*
Every topic the chart makes, as a YAML list of {name, partitions, config}: kafka.topics
with the prefix, and the aggregator's table changelogs, named after its app id as Faust
names them and configured as quaxspec.topics.changelog_topics. Made up front, so that the
aggregator never creates them itself on a fresh broker (Faust's PartitionsMismatch race).
*/}}
{{- define "quax-stream.kafka.allTopics" -}}
{{- $kafka := .Values.kafka }}
{{- $topics := list }}
{{- $partials := 0 }}
{{- range $kafka.topics }}
{{- $topics = append $topics (dict "name" (printf "%s%s" $kafka.topicPrefix .name) "partitions" (int .partitions) "config" .config) }}
{{- if eq .name "quax.partials" }}{{ $partials = int .partitions }}{{ end }}
{{- end }}
{{- if not $partials }}
{{- fail "kafka.topics must declare quax.partials and its partitions" }}
{{- end }}
{{- $changelog := dict "cleanup.policy" "compact" "max.message.bytes" (int64 $kafka.maxMessageBytes | toString) "segment.ms" "3600000" "min.cleanable.dirty.ratio" "0.1" }}
{{- range list "files" "runs" "offsets" }}
{{- $topics = append $topics (dict "name" (printf "%s-%s-changelog" $.Values.aggregator.appId .) "partitions" $partials "config" $changelog) }}
{{- end }}
{{- toYaml $topics }}
{{- end }}

{{/*
Partition count of the raw topic: the most FFT workers that can share the work.
*/}}
{{- define "quax-stream.rawPartitions" -}}
{{- $partitions := 0 }}
{{- range .Values.kafka.topics }}
{{- if eq .name "quax.raw" }}{{ $partitions = int .partitions }}{{ end }}
{{- end }}
{{- if not $partitions }}
{{- fail "kafka.topics must declare quax.raw and its partitions" }}
{{- end }}
{{- $partitions }}
{{- end }}

{{/*
The pod-level part of every workload of the chart: service account, no token, security
context, placement. Argument: (dict "root" $ "values" .Values.api).
*/}}
{{- define "quax-stream.podCommon" -}}
serviceAccountName: {{ include "quax-stream.serviceAccountName" .root }}
automountServiceAccountToken: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .values.podSecurityContext | nindent 2 }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Environment of a service container: the shared ConfigMap (Kafka, logging) and its own.
*/}}
{{- define "quax-stream.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "quax-stream.componentName" (dict "root" .root "component" "common") }}
  - configMapRef:
      name: {{ include "quax-stream.componentName" (dict "root" .root "component" .component) }}
{{- if include "quax-stream.kafka.authenticated" .root }}
env:
  # The component's own Kafka user (a Strimzi KafkaUser of the same name).
  - name: QUAX_KAFKA_SASL_USERNAME
    value: {{ include "quax-stream.componentName" (dict "root" .root "component" .component) }}
{{- end }}
{{- end }}

{{/*
"true" when clients authenticate to Kafka (Strimzi mode with SCRAM users), else empty.
*/}}
{{- define "quax-stream.kafka.authenticated" -}}
{{- if and (eq .Values.kafka.mode "strimzi") (eq .Values.kafka.strimzi.authentication "scram-sha-512") -}}
true
{{- end -}}
{{- end }}

{{/*
Mounts of a Kafka client container: its user's password and the cluster CA (list items).
*/}}
{{- define "quax-stream.kafka.authMounts" -}}
{{- if include "quax-stream.kafka.authenticated" .root }}
- name: kafka-user
  mountPath: /var/run/quax/kafka-user
  readOnly: true
- name: kafka-ca
  mountPath: /var/run/quax/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{/*
Volumes of a Kafka client pod: the Secrets Strimzi makes for its KafkaUser and cluster CA.
*/}}
{{- define "quax-stream.kafka.authVolumes" -}}
{{- if include "quax-stream.kafka.authenticated" .root }}
- name: kafka-user
  secret:
    secretName: {{ include "quax-stream.componentName" (dict "root" .root "component" .component) }}
    items:
      - key: password
        path: password
- name: kafka-ca
  secret:
    secretName: {{ include "quax-stream.kafka.strimziCluster" .root }}-cluster-ca-cert
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}

{{/*
A component's settings as environment variables: (dict "prefix" "QUAX_API_" "settings" .Values.api.settings).
Keys are the settings class's field names; unset (null) values are left out. Whole numbers
are written without an exponent (Helm reads every number as a float).
*/}}
{{- define "quax-stream.settingsEnv" -}}
{{- $prefix := .prefix }}
{{- $lines := list }}
{{- range $field, $value := .settings }}
{{- if not (kindIs "invalid" $value) }}
{{- if and (kindIs "float64" $value) (eq $value (floor $value)) }}
{{- $value = int64 $value }}
{{- end }}
{{- if or (kindIs "slice" $value) (kindIs "map" $value) }}
{{- $value = toJson $value }}
{{- end }}
{{- $lines = append $lines (printf "%s%s: %s" $prefix (upper $field) ($value | toString | quote)) }}
{{- end }}
{{- end }}
{{- join "\n" $lines }}
{{- end }}

{{/*
Init container that waits until every project topic exists (quaxspec.topics, with the
prefix of QUAX_KAFKA_TOPIC_PREFIX), run with the component's own image so that the topic
list is the one the service uses: (dict "root" $ "values" .Values.api "component" "api").
*/}}
{{- define "quax-stream.waitForTopics" -}}
{{- if .root.Values.kafka.waitForTopics -}}
initContainers:
  - name: wait-for-topics
    image: {{ include "quax-stream.image" (dict "root" .root "image" .values.image) }}
    imagePullPolicy: {{ .values.image.pullPolicy }}
    command:
      - python
      - -c
      - |
        import asyncio, sys, time
        from aiokafka.admin import AIOKafkaAdminClient
        from quaxspec.settings import KafkaSettings
        import os
        from quaxspec.topics import ALL_TOPICS, changelog_topics
        kafka = KafkaSettings()
        wanted = {kafka.topic(spec) for spec in ALL_TOPICS}
        if "QUAX_AGGREGATOR_APP_ID" in os.environ:  # its table changelogs too
            app_id = os.environ["QUAX_AGGREGATOR_APP_ID"]
            wanted |= {spec.name for spec in changelog_topics(app_id)}
        async def missing():
            admin = AIOKafkaAdminClient(**kafka.client_options())
            await admin.start()
            try:
                return sorted(wanted - set(await admin.list_topics()))
            finally:
                await admin.close()
        while True:
            try:
                left = asyncio.run(missing())
            except Exception as error:
                left = f"Kafka at {kafka.bootstrap_servers} not reachable yet ({error!r})"
            if not left:
                print("All topics exist:", ", ".join(sorted(wanted)), flush=True)
                sys.exit(0)
            print("Waiting for topics:", left, flush=True)
            time.sleep(3)
    {{- include "quax-stream.envFrom" . | nindent 4 }}
    resources:
      requests:
        cpu: 10m
        memory: 64Mi
      limits:
        cpu: 200m
        memory: 256Mi
    securityContext:
      {{- toYaml .values.securityContext | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- include "quax-stream.kafka.authMounts" . | nindent 6 }}
{{- end }}
{{- end }}

{{/*
Checksum of a component's configuration, so that its pods restart when it changes.
*/}}
{{- define "quax-stream.configChecksum" -}}
checksum/config: {{ printf "%s%s" (include (print .root.Template.BasePath "/common-configmap.yaml") .root) (include (print .root.Template.BasePath "/" .component "-configmap.yaml") .root) | sha256sum }}
{{- end }}

{{/*
Linter waivers of a workload that runs one of the chart's images (checkov annotations).
*/}}
{{- define "quax-stream.imageWaivers" -}}
checkov.io/skip1: CKV_K8S_43=Images are pinned by tag (the chart's appVersion, apache/kafka 4.1.1); images built locally and loaded into kind or minikube have no registry digest.
checkov.io/skip2: CKV_K8S_15=IfNotPresent on purpose - images loaded into kind or minikube are in no registry, and a release tag is never rebuilt.
{{- end }}

{{/*
The producer's workload kind: a Job for a replay, which ends (a directory, or a synthetic DAQ
with settings.files), so that a finished replay is not started again; a Deployment for a
watched folder or an endless synthetic DAQ. Either way the producer resumes its run from
quax.progress after a restart.
*/}}
{{- define "quax-stream.producerKind" -}}
{{- $values := .Values.producer -}}
{{- if or (has $values.source (list "directory" "s3")) (and (eq $values.source "synthetic") $values.settings.files) -}}
Job
{{- else -}}
Deployment
{{- end -}}
{{- end }}

{{/*
The replicas of a Deployment that people scale by hand (`kubectl scale`). Helm 4 applies
objects server-side, and after `kubectl scale` the scale subresource owns .spec.replicas:
an upgrade applying another count would fail with a conflict. So, as Helm 3's merge did,
an upgrade keeps the live count while the values' replicaCount is the one the Deployment
was last given (the annotation below); a changed replicaCount is applied (after a
`kubectl scale`, with `helm upgrade --force-conflicts`). `helm template` sees no live
object and renders replicaCount.
*/}}
{{- define "quax-stream.replicas" -}}
{{- $live := lookup "apps/v1" "Deployment" .root.Release.Namespace (include "quax-stream.componentName" .) -}}
{{- $given := dig "metadata" "annotations" "quax-stream/replica-count" "" $live -}}
{{- if and $live (eq $given (toString .values.replicaCount)) -}}
{{- int (dig "spec" "replicas" .values.replicaCount $live) -}}
{{- else -}}
{{- int .values.replicaCount -}}
{{- end -}}
{{- end }}

{{- define "quax-stream.replicaCountAnnotation" -}}
quax-stream/replica-count: {{ .values.replicaCount | toString | quote }}
{{- end }}

{{/*
Whether the API mounts the archiver's volume and serves archived runs from it: "true" or "".
*/}}
{{- define "quax-stream.apiReadsArchive" -}}
{{- if and .Values.api.enabled .Values.archiver.enabled .Values.api.archive.enabled -}}true{{- end -}}
{{- end }}

{{/*
Whether the archive is kept in an object store (archiver.s3.url) rather than on the
archiver's volume: "true" or "".
*/}}
{{- define "quax-stream.archiveInS3" -}}
{{- if .Values.archiver.s3.url -}}true{{- end -}}
{{- end }}

{{/*
How a service reaches an object store, as ConfigMap data (QUAX_S3_*), from a values block
with endpointUrl, addressingStyle, region and existingSecret (producer.s3, archiver.s3).
*/}}
{{- define "quax-stream.s3Env" -}}
QUAX_S3_ADDRESSING_STYLE: {{ .addressingStyle | quote }}
{{- with .endpointUrl }}
QUAX_S3_ENDPOINT_URL: {{ . | quote }}
{{- end }}
{{- with .region }}
QUAX_S3_REGION: {{ . | quote }}
{{- end }}
{{- if .existingSecret }}
# The keys as a file (an AWS shared credentials file), not as environment variables.
AWS_SHARED_CREDENTIALS_FILE: /etc/quax/s3/credentials
{{- end }}
{{- end }}

{{/*
The mount of the object store's credentials file (an s3 block with existingSecret), or nothing.
*/}}
{{- define "quax-stream.s3Mounts" -}}
{{- if .existingSecret }}
- name: s3-credentials
  mountPath: /etc/quax/s3
  readOnly: true
{{- end }}
{{- end }}

{{/*
The volume of the object store's credentials: the Secret's key `credentials`, or nothing.
*/}}
{{- define "quax-stream.s3Volumes" -}}
{{- if .existingSecret }}
- name: s3-credentials
  secret:
    secretName: {{ .existingSecret }}
    items:
      - key: credentials
        path: credentials
{{- end }}
{{- end }}

{{/*
The producer's pod spec, the same in its Deployment (a watched folder, an endless synthetic
DAQ) and its Job (a replay): see quax-stream.producerKind.
*/}}
{{- define "quax-stream.producerPod" -}}
{{- $values := .Values.producer }}
{{- $ctx := dict "root" . "values" $values "component" "producer" }}
{{- $s3 := eq $values.source "s3" }}
{{- $folder := has $values.source (list "directory" "watch") }}
{{- include "quax-stream.podCommon" $ctx | nindent 0 }}
terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
{{- with include "quax-stream.waitForTopics" $ctx }}
{{- . | nindent 0 }}
{{- end }}
containers:
  - name: producer
    image: {{ include "quax-stream.image" (dict "root" . "image" $values.image) }}
    imagePullPolicy: {{ $values.image.pullPolicy }}
    args: ["run"]
    {{- include "quax-stream.envFrom" $ctx | nindent 4 }}
    ports:
      - name: metrics
        containerPort: {{ $values.metrics.port }}
        protocol: TCP
    # The metrics endpoint runs in the producer process: it answers while it lives.
    startupProbe:
      httpGet:
        path: /metrics
        port: metrics
      periodSeconds: 2
      failureThreshold: 30
    livenessProbe:
      httpGet:
        path: /metrics
        port: metrics
      periodSeconds: 20
      timeoutSeconds: 5
      failureThreshold: 3
    readinessProbe:
      httpGet:
        path: /metrics
        port: metrics
      periodSeconds: 10
      timeoutSeconds: 5
    resources:
      {{- toYaml $values.resources | nindent 6 }}
    securityContext:
      {{- toYaml $values.securityContext | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      {{- if $folder }}
      - name: daq
        mountPath: {{ $values.data.mountPath }}
        readOnly: true
        {{- with $values.data.subPath }}
        subPath: {{ . }}
        {{- end }}
      {{- end }}
      {{- with and $s3 (include "quax-stream.s3Mounts" $values.s3) }}
      {{- . | nindent 6 }}
      {{- end }}
      {{- include "quax-stream.kafka.authMounts" $ctx | nindent 6 }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 256Mi
  {{- include "quax-stream.kafka.authVolumes" $ctx | nindent 2 }}
  {{- with and $s3 (include "quax-stream.s3Volumes" $values.s3) }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- if $folder }}
  - name: daq
    {{- if $values.data.existingClaim }}
    persistentVolumeClaim:
      claimName: {{ $values.data.existingClaim }}
      readOnly: true
    {{- else }}
    hostPath:
      path: {{ $values.data.hostPath }}
      type: Directory
    {{- end }}
  {{- end }}
{{- end }}

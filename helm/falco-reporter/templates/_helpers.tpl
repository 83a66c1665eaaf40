{{/* Chart name, truncated to a DNS label. */}}
{{- define "falco-reporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: prefix of every object name. */}}
{{- define "falco-reporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "falco-reporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "falco-reporter.labels" -}}
helm.sh/chart: {{ include "falco-reporter.chart" . }}
{{ include "falco-reporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: falco-reporter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "falco-reporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "falco-reporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Pods that serve the receiver (the operator pod, or the separate receiver pods). */}}
{{- define "falco-reporter.receiverPodLabel" -}}
falcoreporter.io/receiver: "true"
{{- end }}

{{- define "falco-reporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "falco-reporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "falco-reporter.receiverServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- printf "%s-receiver" (include "falco-reporter.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- include "falco-reporter.serviceAccountName" . }}
{{- end }}
{{- end }}

{{- define "falco-reporter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "falco-reporter.fallbackNamespace" -}}
{{- default .Release.Namespace .Values.receiver.fallbackNamespace }}
{{- end }}

{{/* Namespaces watched in namespaced mode: watchNamespaces + the fallback namespace, as JSON. */}}
{{- define "falco-reporter.watchedNamespaces" -}}
{{- $all := concat (.Values.watchNamespaces | default list) (list (include "falco-reporter.fallbackNamespace" .)) | uniq }}
{{- toJson $all }}
{{- end }}

{{- define "falco-reporter.peeringName" -}}
{{- default (include "falco-reporter.fullname" .) .Values.operator.peering.name }}
{{- end }}

{{- define "falco-reporter.tokenSecretName" -}}
{{- default (printf "%s-webhook-token" (include "falco-reporter.fullname" .)) .Values.auth.token.existingSecret }}
{{- end }}

{{- define "falco-reporter.tlsSecretName" -}}
{{- if .Values.tls.secretName }}
{{- .Values.tls.secretName }}
{{- else if .Values.tls.certManager.enabled }}
{{- printf "%s-tls" (include "falco-reporter.fullname" .) }}
{{- else }}
{{- fail "tls.enabled needs tls.secretName (a Secret with tls.crt/tls.key) or tls.certManager.enabled" }}
{{- end }}
{{- end }}

{{- define "falco-reporter.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{/* In-cluster URL Falcosidekick / Falco post to. */}}
{{- define "falco-reporter.alertsURL" -}}
{{- printf "%s://%s.%s.svc:%v/v1/alerts" (include "falco-reporter.scheme" .) (include "falco-reporter.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}

{{/* Receiver flags shared by `run` (embedded receiver) and `receiver`. */}}
{{- define "falco-reporter.receiverArgs" -}}
- --bind=0.0.0.0:{{ .Values.receiver.port }}
- --fallback-namespace={{ include "falco-reporter.fallbackNamespace" . }}
- --max-body={{ int64 .Values.receiver.maxBody }}
- --request-timeout={{ .Values.receiver.requestTimeout }}
- --flush-interval={{ .Values.receiver.flushInterval }}
{{- if .Values.receiver.journal.enabled }}
- --journal-dir=/var/lib/falco-reporter/journal
- --journal-sync={{ .Values.receiver.journal.sync }}
- --journal-max-entries={{ int64 .Values.receiver.journal.maxEntries }}
- --journal-max-bytes={{ int64 .Values.receiver.journal.maxBytes }}
{{- end }}
{{- if .Values.receiver.metricsToken.existingSecret }}
- --metrics-token-file=/etc/falco-reporter/metrics-token/token
{{- end }}
{{- range .Values.receiver.allowedClientSubjects }}
- --tls-client-subject={{ . }}
{{- end }}
{{- if .Values.auth.token.enabled }}
- --token-file=/etc/falco-reporter/token/token
{{- end }}
{{- if .Values.tls.enabled }}
- --tls-cert=/etc/falco-reporter/tls/tls.crt
- --tls-key=/etc/falco-reporter/tls/tls.key
{{- if .Values.tls.clientAuth }}
- --tls-client-ca=/etc/falco-reporter/client-ca/ca.crt
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes of a receiver-serving pod (the journal's claim of a StatefulSet comes from its template). */}}
{{- define "falco-reporter.receiverVolumes" -}}
{{- $j := .Values.receiver.journal }}
{{- if $j.enabled }}
{{- if not $j.persistence.enabled }}
- name: journal
  emptyDir:
    sizeLimit: {{ $j.sizeLimit }}
{{- else if not .Values.receiver.separate }}
- name: journal
  persistentVolumeClaim:
    claimName: {{ include "falco-reporter.fullname" . }}-journal
{{- end }}
{{- end }}
{{- if .Values.receiver.metricsToken.existingSecret }}
- name: metrics-token
  secret:
    secretName: {{ .Values.receiver.metricsToken.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.receiver.metricsToken.key }}
        path: token
{{- end }}
{{- if .Values.auth.token.enabled }}
- name: token
  secret:
    secretName: {{ include "falco-reporter.tokenSecretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .Values.auth.token.key }}
        path: token
{{- end }}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "falco-reporter.tlsSecretName" . }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- if .Values.tls.clientAuth }}
- name: client-ca
  secret:
    secretName: {{ default (include "falco-reporter.tlsSecretName" .) .Values.tls.clientCASecretName }}
    defaultMode: 0440
    items:
      - key: {{ .Values.tls.clientCAKey }}
        path: ca.crt
{{- end }}
{{- end }}
{{- end }}

{{- define "falco-reporter.receiverVolumeMounts" -}}
{{- if .Values.receiver.journal.enabled }}
- name: journal
  mountPath: /var/lib/falco-reporter/journal
{{- end }}
{{- if .Values.receiver.metricsToken.existingSecret }}
- name: metrics-token
  mountPath: /etc/falco-reporter/metrics-token
  readOnly: true
{{- end }}
{{- if .Values.auth.token.enabled }}
- name: token
  mountPath: /etc/falco-reporter/token
  readOnly: true
{{- end }}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/falco-reporter/tls
  readOnly: true
{{- if .Values.tls.clientAuth }}
- name: client-ca
  mountPath: /etc/falco-reporter/client-ca
  readOnly: true
{{- end }}
{{- end }}
{{- end }}

{{/* Probes of the receiver port. With mutual TLS the kubelet cannot present a client
certificate, so the probes fall back to a TCP connect. */}}
{{- define "falco-reporter.receiverProbes" -}}
{{- $p := .Values.probes }}
{{- if and .Values.tls.enabled .Values.tls.clientAuth }}
startupProbe:
  tcpSocket:
    port: http
  {{- toYaml $p.startup | nindent 2 }}
livenessProbe:
  tcpSocket:
    port: http
  {{- toYaml $p.liveness | nindent 2 }}
readinessProbe:
  tcpSocket:
    port: http
  {{- toYaml $p.readiness | nindent 2 }}
{{- else }}
startupProbe:
  httpGet:
    path: /healthz
    port: http
    scheme: {{ include "falco-reporter.scheme" . | upper }}
  {{- toYaml $p.startup | nindent 2 }}
livenessProbe:
  httpGet:
    path: /healthz
    port: http
    scheme: {{ include "falco-reporter.scheme" . | upper }}
  {{- toYaml $p.liveness | nindent 2 }}
readinessProbe:
  httpGet:
    path: /readyz
    port: http
    scheme: {{ include "falco-reporter.scheme" . | upper }}
  {{- toYaml $p.readiness | nindent 2 }}
{{- end }}
{{- end }}

{{/* Keep serving for a few seconds after SIGTERM is due, while the Service drops this endpoint. */}}
{{- define "falco-reporter.receiverLifecycle" -}}
{{- if .Values.receiver.preStopSeconds }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ .Values.receiver.preStopSeconds }}
{{- end }}
{{- end }}

{{/* Environment shared by both containers. */}}
{{- define "falco-reporter.commonEnv" -}}
- name: POD_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: FALCO_REPORTER_LOG_LEVEL
  value: {{ .Values.operator.logLevel | quote }}
- name: HOME
  value: /tmp
- name: XDG_CACHE_HOME
  value: /tmp/cache
{{- end }}

{{/* FALCO_REPORTER_LLM_* (read by falco_reporter.reporting.llm_config). */}}
{{- define "falco-reporter.llmEnv" -}}
{{- $l := .Values.llm }}
- name: FALCO_REPORTER_LLM_PROVIDER
  value: {{ $l.provider | quote }}
{{- if ne $l.provider "none" }}
{{- with $l.model }}
- name: FALCO_REPORTER_LLM_MODEL
  value: {{ . | quote }}
{{- end }}
{{- with $l.baseUrl }}
- name: FALCO_REPORTER_LLM_BASE_URL
  value: {{ . | quote }}
{{- end }}
{{- with $l.apiVersion }}
- name: FALCO_REPORTER_LLM_API_VERSION
  value: {{ . | quote }}
{{- end }}
- name: FALCO_REPORTER_LLM_TEMPERATURE
  value: {{ $l.temperature | quote }}
- name: FALCO_REPORTER_LLM_TIMEOUT
  value: {{ $l.timeout | quote }}
- name: FALCO_REPORTER_LLM_MAX_TOKENS
  value: {{ $l.maxTokens | quote }}
- name: FALCO_REPORTER_LLM_CONCURRENCY
  value: {{ $l.concurrency | quote }}
- name: FALCO_REPORTER_LLM_CALLS_PER_HOUR
  value: {{ $l.callsPerHour | quote }}
- name: FALCO_REPORTER_LLM_TOKENS_PER_HOUR
  value: {{ int64 $l.tokensPerHour | quote }}
- name: FALCO_REPORTER_LLM_CACHE_SIZE
  value: {{ $l.cacheSize | quote }}
- name: FALCO_REPORTER_LLM_REDACT
  value: {{ $l.redact | quote }}
{{- if eq $l.provider "llamacpp" }}
- name: FALCO_REPORTER_LLM_MODEL_PATH
  value: {{ required "llm.modelPath is required for llm.provider=llamacpp" $l.modelPath | quote }}
- name: FALCO_REPORTER_LLM_N_CTX
  value: {{ $l.nCtx | quote }}
- name: FALCO_REPORTER_LLM_N_THREADS
  value: {{ $l.nThreads | quote }}
{{- end }}
{{- if $l.apiKey.existingSecret }}
- name: LLM_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $l.apiKey.existingSecret }}
      key: {{ $l.apiKey.key }}
- name: FALCO_REPORTER_LLM_API_KEY_ENV
  value: LLM_API_KEY
{{- end }}
{{- end }}
{{- end }}

{{- define "falco-reporter.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{/* The webhook token: the value already stored in the generated Secret (kept across upgrades),
else a new random one. Outside a cluster (helm template, --dry-run) lookup returns nothing,
so a random value is rendered. */}}
{{- define "falco-reporter.token" -}}
{{- if not (hasKey .Values "_webhookTokenCache") }}
{{- $name := printf "%s-webhook-token" (include "falco-reporter.fullname" .) }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name }}
{{- $token := randAlphaNum 48 }}
{{- if and $existing $existing.data (hasKey $existing.data .Values.auth.token.key) }}
{{- $token = index $existing.data .Values.auth.token.key | b64dec }}
{{- end }}
{{- /* Memoised in the values map (shared by every template of this render), so the Secret and the
pods' checksum annotation see the same new token on a first install. */}}
{{- $_ := set .Values "_webhookTokenCache" $token }}
{{- end }}
{{- index .Values "_webhookTokenCache" }}
{{- end }}

{{/* Namespaced rules of the operator: exactly the calls in falco_reporter/kube/*.py plus what
kopf itself needs for the watched resources. */}}
{{- define "falco-reporter.operatorRules" -}}
# Enrichment (kube/objects.py): read the pod (by name, or list to find it by container id),
# its owner chain and its ServiceAccount. Never secrets, never writes.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
- apiGroups: [apps]
  resources: [replicasets, deployments, statefulsets, daemonsets]
  verbs: [get]
- apiGroups: [batch]
  resources: [jobs, cronjobs]
  verbs: [get]
- apiGroups: [""]
  resources: [replicationcontrollers, serviceaccounts]
  verbs: [get]
# Our resources (kube/resources.py, and kopf's watch + annotation patches). No delete:
# AlertReports are garbage-collected through their ownerReference.
- apiGroups: [falcoreporter.io]
  resources: [falcoalerts, alertreports]
  verbs: [create, get, list, watch, patch]
- apiGroups: [falcoreporter.io]
  resources: [falcoalerts/status, alertreports/status]
  verbs: [patch, update]
# kopf posts Kubernetes Events about handler progress and errors.
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* Rules of the separate receiver: placement check, create the FalcoAlert, merge repeats. */}}
{{- define "falco-reporter.receiverRules" -}}
- apiGroups: [falcoreporter.io]
  resources: [falcoalerts]
  verbs: [create, get]
- apiGroups: [falcoreporter.io]
  resources: [falcoalerts/status]
  verbs: [patch]
{{- end }}

{{/* The receiver's placement check (kube/objects.py namespace_exists) reads Namespace objects. */}}
{{- define "falco-reporter.namespaceReadRule" -}}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
  {{- if .Values.rbac.namespaced }}
  resourceNames:
    {{- range (include "falco-reporter.watchedNamespaces" . | fromJsonArray) }}
    - {{ . | quote }}
    {{- end }}
  {{- end }}
{{- end }}

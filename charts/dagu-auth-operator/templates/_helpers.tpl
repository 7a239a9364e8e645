{{/*
Names and labels, following Helm's conventions.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "dagu-auth-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: fullnameOverride, else <release>-<name> (or the release name alone when it already
contains the name). Truncated to 63 characters, the limit of a DNS label.
*/}}
{{- define "dagu-auth-operator.fullname" -}}
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

{{/* name-version, as helm.sh/chart expects. */}}
{{- define "dagu-auth-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "dagu-auth-operator.labels" -}}
helm.sh/chart: {{ include "dagu-auth-operator.chart" . }}
{{ include "dagu-auth-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: dagu-auth-operator
{{- end }}

{{/* The stable subset the Deployment selects its pods by (never change it: selectors are immutable). */}}
{{- define "dagu-auth-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dagu-auth-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "dagu-auth-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dagu-auth-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false (the ServiceAccount the operator runs as)" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is pinned. */}}
{{- define "dagu-auth-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The operator's RBAC rules of one kind (clusterRules or namespaceRules) from files/rbac.yaml, which
npm run generate writes from src/operator/rbac.ts. Usage: include "dagu-auth-operator.rules" (list . "clusterRules")
*/}}
{{- define "dagu-auth-operator.rules" -}}
{{- $root := index . 0 }}
{{- $key := index . 1 }}
{{- $rbac := $root.Files.Get "files/rbac.yaml" | fromYaml }}
{{- $rules := get $rbac $key }}
{{- if not $rules }}
{{- fail (printf "files/rbac.yaml has no %s: run npm run generate" $key) }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{/* Cross-field checks the JSON schema cannot phrase clearly. */}}
{{- define "dagu-auth-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: two operators would write the same objects; enable leader election or set replicaCount to 1" (int .Values.replicaCount)) }}
{{- end }}
{{- end }}

{{/* The leader-election Lease: one per install, so the instance is part of it. */}}
{{- define "dagu-auth-operator.leaseName" -}}
{{ .Values.leaderElection.leaseName }}{{ with .Values.operator.instance }}-{{ . }}{{ end }}
{{- end }}

{{/* Sidecar injection: the webhook configuration (cluster-scoped, so named after the release), its Service and Secret. */}}
{{- define "dagu-auth-operator.webhookConfigurationName" -}}
{{- include "dagu-auth-operator.fullname" . }}
{{- end }}

{{- define "dagu-auth-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "dagu-auth-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dagu-auth-operator.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "dagu-auth-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The image of the injected sidecar: injection.sidecar.image, else the operator's own. */}}
{{- define "dagu-auth-operator.sidecarImage" -}}
{{- $i := .Values.injection.sidecar.image }}
{{- $repository := default .Values.image.repository $i.repository }}
{{- if $i.digest }}
{{- printf "%s@%s" $repository $i.digest }}
{{- else if $i.tag }}
{{- printf "%s:%s" $repository $i.tag }}
{{- else if $i.repository }}
{{- printf "%s:%s" $repository .Chart.AppVersion }}
{{- else }}
{{- include "dagu-auth-operator.image" . }}
{{- end }}
{{- end }}

{{/* What the operator is told about the sidecar it injects (--injection-config; src/operator/injection/config.ts). */}}
{{- define "dagu-auth-operator.injectionConfig" -}}
{{- $s := .Values.injection.sidecar }}
{{- dict "sidecar" (dict "image" (include "dagu-auth-operator.sidecarImage" .) "imagePullPolicy" $s.imagePullPolicy "resources" $s.resources "securityContext" $s.securityContext "metricsPort" $s.metricsPort "logLevel" $s.logLevel) "daguPort" .Values.injection.daguPort "egressPort" .Values.injection.egressPort | toPrettyJson }}
{{- end }}

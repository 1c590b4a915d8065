{{/* Names. Kubernetes names are at most 63 characters; components add up to 16. */}}
{{- define "sandbox.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sandbox.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 47 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 47 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 47 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: (dict "ctx" $ "component" "rabbitmq") -> <fullname>-rabbitmq. */}}
{{- define "sandbox.component.fullname" -}}
{{- printf "%s-%s" (include "sandbox.fullname" .ctx) .component -}}
{{- end -}}

{{- define "sandbox.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels every object carries. Call with (dict "ctx" $ "component" "rabbitmq"
"version" "4.1.4"): app.kubernetes.io/version is what runs in it (the image's
tag), not the chart's version.
*/}}
{{- define "sandbox.labels" -}}
helm.sh/chart: {{ include "sandbox.chart" .ctx }}
{{ include "sandbox.selectorLabels" . }}
app.kubernetes.io/version: {{ default .ctx.Chart.AppVersion .version | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: outrigger
{{- end -}}

{{/* The stable subset used in selectors (never change these on upgrade). */}}
{{- define "sandbox.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sandbox.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The tag of an image reference ("rabbitmq:4.1.4-management" -> "4.1.4-management"). */}}
{{- define "sandbox.imageTag" -}}
{{- $last := regexReplaceAll "^.*/" . "" -}}
{{- if contains ":" $last -}}{{- regexReplaceAll "^[^:]*:" $last "" -}}{{- else -}}latest{{- end -}}
{{- end -}}

{{/* A demo image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "sandbox.demoImage" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/*
"true" when the demo's weather API is deployed (else ""): its Deployment, its
Toxiproxy proxy and ingestion's weather target go together.
*/}}
{{- define "sandbox.weatherApi.enabled" -}}
{{- if and .Values.demo.enabled .Values.demo.weatherApi.enabled -}}true{{- end -}}
{{- end -}}

{{/* The port the weather API and Toxiproxy's "weather" proxy in front of it listen on. */}}
{{- define "sandbox.weatherApi.port" -}}8090{{- end -}}

{{/*
The pod security every sandbox workload runs with (the restricted Pod Security
Standard): non-root, no privilege escalation, no capabilities, the runtime's
seccomp profile. Call with the user id.
*/}}
{{- define "sandbox.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Call with true where the image writes only to its volumes (the third-party databases and Grafana write elsewhere too). */}}
{{- define "sandbox.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ . }}
capabilities:
  drop: [ALL]
{{- end -}}

{{/*
Passwords: generated once and kept. An existing Secret's value wins (helm
upgrade keeps the password RabbitMQ and PostgreSQL stored on first boot);
otherwise a random one, made once per render and cached on .Release so every
template that needs it agrees. Call with (dict "ctx" $ "secret" NAME "key" KEY).
*/}}
{{- define "sandbox.password" -}}
{{- $cacheKey := printf "sandboxPassword/%s/%s" .secret .key -}}
{{- if not (hasKey .ctx.Release $cacheKey) -}}
{{- $value := randAlphaNum 24 -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- with $existing -}}
{{- with (get (default dict .data) $.key) -}}
{{- $value = b64dec . -}}
{{- end -}}
{{- end -}}
{{- $_ := set .ctx.Release $cacheKey $value -}}
{{- end -}}
{{- get .ctx.Release $cacheKey -}}
{{- end -}}

{{/* 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st ... */}}
{{- define "sandbox.ordinal" -}}
{{- $n := int . -}}
{{- $suffix := "th" -}}
{{- $teens := mod $n 100 -}}
{{- if not (and (ge $teens 11) (le $teens 13)) -}}
{{- $suffix = get (dict "1" "st" "2" "nd" "3" "rd") (toString (mod $n 10)) | default "th" -}}
{{- end -}}
{{- printf "%d%s" $n $suffix -}}
{{- end -}}

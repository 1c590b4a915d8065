{{/* Names. Kubernetes names are at most 63 characters. */}}
{{- define "outrigger.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "outrigger.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* <fullname>-injector, leaving room for suffixes such as -tls and -ca. */}}
{{- define "outrigger.injector.fullname" -}}
{{- printf "%s-injector" (include "outrigger.fullname" . | trunc 50 | trimSuffix "-") -}}
{{- end -}}

{{- define "outrigger.sidecar.fullname" -}}
{{- printf "%s-sidecar" (include "outrigger.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{- define "outrigger.injector.tlsSecret" -}}
{{- printf "%s-tls" (include "outrigger.injector.fullname" .) -}}
{{- end -}}

{{- define "outrigger.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. Call with (dict "ctx" $ "component" "injector"). */}}
{{- define "outrigger.labels" -}}
helm.sh/chart: {{ include "outrigger.chart" .ctx }}
{{ include "outrigger.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: outrigger
{{- end -}}

{{/* The stable subset used in selectors (never change these on upgrade). */}}
{{- define "outrigger.selectorLabels" -}}
app.kubernetes.io/name: {{ include "outrigger.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "outrigger.imageRef" -}}
{{- if .digest -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (default .appVersion .tag) -}}
{{- end -}}
{{- end -}}

{{- define "outrigger.injector.image" -}}
{{- include "outrigger.imageRef" (dict "repository" .Values.image.repository "tag" .Values.image.tag "digest" .Values.image.digest "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/* The sidecar image: sidecar.image when its repository is set, else the injector's. */}}
{{- define "outrigger.sidecar.image" -}}
{{- $image := .Values.sidecar.image -}}
{{- if $image.repository -}}
{{- include "outrigger.imageRef" (dict "repository" $image.repository "tag" $image.tag "digest" $image.digest "appVersion" .Chart.AppVersion) -}}
{{- else -}}
{{- include "outrigger.injector.image" . -}}
{{- end -}}
{{- end -}}

{{/*
The webhook's TLS material when the chart generates it: a CA and a serving
certificate for the Service's DNS names, made once per render and cached on
.Release so the Secret, the caBundle and the Deployment's checksum agree
whatever order the templates render in. The caBundle also carries the CA of
the Secret being replaced (looked up; empty under `helm template`), so pods
still serving the previous certificate are trusted while they roll.
*/}}
{{- define "outrigger.injector.tls" -}}
{{- if not (hasKey .Release "outriggerInjectorTLS") -}}
{{- $service := include "outrigger.injector.fullname" . -}}
{{- $names := list $service (printf "%s.%s" $service .Release.Namespace) (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s.svc.cluster.local" $service .Release.Namespace) -}}
{{- $days := int .Values.webhook.tls.validityDays -}}
{{- $ca := genCA (printf "%s-ca" $service) $days -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $service .Release.Namespace) nil $names $days $ca -}}
{{- $bundle := $ca.Cert -}}
{{- $previous := lookup "v1" "Secret" .Release.Namespace (include "outrigger.injector.tlsSecret" .) -}}
{{- with $previous -}}
{{- $old := get (default dict .data) "ca.crt" | b64dec -}}
{{- if and $old (ne $old $ca.Cert) -}}
{{- $bundle = printf "%s\n%s" (trimSuffix "\n" $ca.Cert) $old -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Release "outriggerInjectorTLS" (dict "ca" $ca.Cert "cert" $cert.Cert "key" $cert.Key "bundle" $bundle) -}}
{{- end -}}
{{- end -}}

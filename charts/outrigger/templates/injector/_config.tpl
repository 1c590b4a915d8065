{{/* The injector's config file (also hashed into the Deployment so a change rolls it). */}}
{{- define "outrigger.injector.config" -}}
{{- $sidecar := .Values.sidecar -}}
{{- $config := dict
  "image" (include "outrigger.sidecar.image" .)
  "imagePullPolicy" (default .Values.image.pullPolicy $sidecar.imagePullPolicy)
  "httpPort" $sidecar.httpPort
  "opsPort" $sidecar.opsPort
  "logLevel" $sidecar.logLevel
  "resources" $sidecar.resources
  "env" $sidecar.env
-}}
{{- if $sidecar.brokerUrlSecret.name -}}
{{- $_ := set $config "brokerUrlSecret" (dict "name" $sidecar.brokerUrlSecret.name "key" $sidecar.brokerUrlSecret.key) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

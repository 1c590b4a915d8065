{{/* The injector's config file (also hashed into the Deployment so a change rolls it). */}}
{{- define "outrigger.injector.config" -}}
{{- $sidecar := .Values.sidecar -}}
{{- /* The injector refuses a name set twice at startup; a JSON schema cannot say "unique by name". */ -}}
{{- $names := dict -}}
{{- range $sidecar.env -}}
{{- if hasKey $names .name -}}
{{- fail (printf "sidecar.env: %q is set twice; a variable takes one value" .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- end -}}
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

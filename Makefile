# The project's verbs. Every target but help, dev and clean first runs
# scripts/bootstrap.sh, which installs what is missing (Node 24, npm packages,
# RabbitMQ, PostgreSQL) and costs about a second when nothing is.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# The project's own Node (installed only when the machine's is too old) and Go-built tools come first.
export PATH := $(CURDIR)/.tools/node/bin:$(CURDIR)/.tools/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export npm_config_update_notifier := false

.PHONY: help toolchain tools build typecheck lint format test crds demo bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

toolchain: ## install and start what every target needs (idempotent)
	@scripts/bootstrap.sh node deps services

tools: toolchain ## build the pinned Go tools (helm, toxiproxy) into .tools/bin
	@scripts/bootstrap.sh tools

.PHONY: kube-tools
kube-tools: toolchain ## build kube-apiserver and kine into .tools/bin (a real API server for tests)
	@bash scripts/bootstrap/kube.sh

# `make tools`, and so `make test`, builds them too: the control-plane tests need them.
tools: kube-tools

build: toolchain ## compile the TypeScript (tsc --build); `npx outrigger` then works from the root
	@tsc --build

typecheck: build ## type-check sources, tests, services, scripts and benchmarks
	@for project in sidecar/tsconfig.test.json services/ingestion scripts bench; do tsc -p "$$project"; done

lint: toolchain ## lint and check formatting (Biome)
	@biome check .

format: toolchain ## fix formatting and safe lint findings
	@biome check --write .

test: tools typecheck lint ## everything CI checks: toolchain, lint, types, all tests
	@scripts/test.sh

crds: toolchain ## regenerate charts/outrigger/crds/ from the sidecar's zod schemas (make test fails when they drift)
	@node scripts/gen-crds.ts

demo: build ## run services with their sidecars against the local RabbitMQ and PostgreSQL (Ctrl-C stops)
	@node scripts/demo.ts

bench: build ## run the benchmarks and print the tables for docs/benchmarks.md
	@node bench/run.ts

.PHONY: dev
dev: ## the sandbox on kind: create the cluster if absent, then skaffold dev (docs/kubernetes.md)
	@missing=""; for tool in docker kind skaffold helm kubectl; do command -v "$$tool" >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then echo "make dev: not on PATH:$$missing (docs/kubernetes.md, Prerequisites)" >&2; exit 1; fi; \
	docker info >/dev/null 2>&1 || { echo "make dev: docker is installed but its daemon does not answer (docker info)" >&2; exit 1; }; \
	kind get clusters 2>/dev/null | grep -qx outrigger || kind create cluster --config kind-config.yaml; \
	skaffold dev --kube-context kind-outrigger

clean: ## remove build output and .tools/cache (keeps the built tools and node_modules)
	@rm -rf sidecar/dist .tools/cache

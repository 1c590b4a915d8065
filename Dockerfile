# syntax=docker/dockerfile:1
# The Outrigger image: the sidecar (`outrigger sidecar`, the default command)
# and the injector (`outrigger injector ...`). Node 24, production
# dependencies only, no package manager and no shell needed at run time, user
# 65532, and nothing written outside /tmp (so readOnlyRootFilesystem works;
# the injected sidecar gets an emptyDir there, the outrigger-tmp volume).
#   docker build -t ghcr.io/outrigger/outrigger:0.1.0 .
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# `npm install` from the lock, not `npm ci`: the lock records only the platform
# packages of the machine it was made on and `npm ci` refuses it (see
# scripts/bootstrap.sh). For the runtime dependencies, `cmp` keeps ci's
# guarantee: the build fails if npm had to change the lock, so what runs is
# exactly what is locked. The build stage's tools (TypeScript's native compiler)
# have per-platform packages, so there npm may add the builder's own (arm64 on
# an Apple-silicon Mac); only the compiled JavaScript leaves that stage.

# Compile the TypeScript (tsc --build, as `make build` does).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY sidecar/package.json sidecar/
RUN npm install --ignore-scripts --no-audit --no-fund
COPY sidecar/tsconfig.json sidecar/
COPY sidecar/src sidecar/src
RUN npx tsc --build

# The runtime dependencies alone, from the same lock file.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY sidecar/package.json sidecar/
RUN cp package-lock.json /tmp/locked.json \
 && npm install --omit=dev --ignore-scripts --no-audit --no-fund \
 && cmp package-lock.json /tmp/locked.json \
 && rm package-lock.json

FROM ${NODE_IMAGE} AS runtime
# npm, npx, corepack and yarn are not needed to run, so they are not there to misuse.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
    /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
WORKDIR /app
ENV NODE_ENV=production
# Owned by root and not writable by the user the process runs as. From deps:
# package.json files, node_modules and sidecar/node_modules (versions npm
# could not hoist).
COPY --from=deps /app /app
COPY --from=build /src/sidecar/dist sidecar/dist
USER 65532:65532
# 3600: the app API (loopback only); 9464: probes and /metrics.
EXPOSE 3600 9464
# Node's flags must match sidecar/bin/outrigger's (the launcher needs bash and
# looks for the project's .tools, so the image runs node itself;
# sidecar/test/chart-sandbox.test.ts fails when they differ): a young
# generation of at most 4 MB per semi-space. At 2 MB a publish costs about 30%
# more CPU; larger grows the resident memory for no gain (docs/benchmarks.md).
ENTRYPOINT ["node", "--max-semi-space-size=4", "/app/sidecar/dist/cli/main.js"]
CMD ["sidecar"]

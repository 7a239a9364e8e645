# syntax=docker/dockerfile:1
# The project's single image: `dagu-auth operator` (charts/dagu-auth-operator) and `dagu-auth sidecar`
# (beside Dagu, examples/dagu-with-sidecar.yaml). scripts/image-smoke.sh runs the same build and start
# commands without Docker (test/integration/image-smoke.test.ts).
ARG NODE_IMAGE=node:24-bookworm-slim

# 1. Build: every dependency (TypeScript), then tsc -p tsconfig.build.json into dist/.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# 2. Production dependencies only (argon2's prebuilt binding included).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# 3. Runtime: Node 24, the compiled JavaScript and the production dependencies; no npm, no sources.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
RUN groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nonroot \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /usr/local/bin/npm /usr/local/bin/npx \
           /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
WORKDIR /app
# package.json: "type": "module" makes dist/ ESM.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# `dagu-auth <command>` on PATH, as the chart and the sidecar example call it.
RUN chmod 0755 /app/dist/src/cli.js && ln -s /app/dist/src/cli.js /usr/local/bin/dagu-auth
USER 65532:65532
ENTRYPOINT ["node", "/app/dist/src/cli.js"]

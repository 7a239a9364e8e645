#!/usr/bin/env bash
# The Dockerfile's build and start commands, without Docker: each stage in its own directory under a
# temp dir, with the same inputs (what .dockerignore lets in and the COPY lines take) and the same
# commands, then the image's entrypoint and the chart's command. Node 24 is the project's pinned one.
#   bash scripts/image-smoke.sh            (IMAGE_SMOKE_KEEP=1 keeps the temp dir)
# With IMAGE_SMOKE_KUBECONFIG set, it also starts `dagu-auth operator` against that cluster until its
# health endpoint answers, then stops it with SIGTERM (it never leads: its Lease namespace does not
# exist, so it reconciles nothing).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
node24=$(cd "$repo" && npx --no-install node -p 'process.execPath')
export PATH="$(dirname "$node24"):$PATH"
case "$(node --version)" in v24.*) ;; *) echo "image-smoke: Node 24 expected, found $(node --version)" >&2; exit 1 ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/dagu-auth-image-smoke.XXXXXX")
if [[ "${IMAGE_SMOKE_KEEP:-}" == 1 ]]; then echo "image-smoke: keeping $work"; else trap 'rm -rf "$work"' EXIT; fi
step() { printf '== %s\n' "$*"; }

step "stage build: npm ci, npm run build"
mkdir -p "$work/build"
cd "$work/build"
cp "$repo/package.json" "$repo/package-lock.json" .
npm ci --no-audit --no-fund
cp "$repo/tsconfig.json" "$repo/tsconfig.build.json" .
cp -R "$repo/src" ./src
npm run build

step "stage deps: npm ci --omit=dev"
mkdir -p "$work/deps"
cd "$work/deps"
cp "$repo/package.json" "$repo/package-lock.json" .
npm ci --omit=dev --no-audit --no-fund

step "runtime: /app"
app="$work/app"
mkdir -p "$app/dist" "$work/usr-local-bin"
cp "$repo/package.json" "$app/"
mv "$work/deps/node_modules" "$app/node_modules"
cp -R "$work/build/dist/src" "$app/dist/src"
chmod 0755 "$app/dist/src/cli.js"
ln -s "$app/dist/src/cli.js" "$work/usr-local-bin/dagu-auth"
for dev in typescript eslint node typescript-eslint fast-check; do
  if [[ -e "$app/node_modules/$dev" ]]; then echo "image-smoke: devDependency $dev is in the runtime image" >&2; exit 1; fi
done
if find "$app/dist" -name '*.ts' ! -name '*.d.ts' | grep -q .; then echo "image-smoke: TypeScript sources in dist/" >&2; exit 1; fi

# Started from another directory, as a pod may be, with the build and the repo out of reach.
cd /
rm -rf "$work/build"
export NODE_ENV=production
step "ENTRYPOINT --help"
node "$app/dist/src/cli.js" --help
step "ENTRYPOINT operator --help"
node "$app/dist/src/cli.js" operator --help
step "the chart's command: dagu-auth operator --help"
PATH="$work/usr-local-bin:$PATH" dagu-auth operator --help

if [[ -n "${IMAGE_SMOKE_KUBECONFIG:-}" ]]; then
  step "the chart's command, started: dagu-auth operator (SIGTERM once /healthz answers)"
  log="$work/operator.log"
  PATH="$work/usr-local-bin:$PATH" dagu-auth operator --kubeconfig "$IMAGE_SMOKE_KUBECONFIG" \
    --health-address 127.0.0.1:0 --leader-election-namespace "image-smoke-absent-$$" --lease-name image-smoke >"$log" 2>&1 &
  pid=$!
  url=""
  for _ in $(seq 1 100); do
    url=$(sed -n 's/.*"health":"\([^"]*\)".*"msg":"operator started".*/\1/p' "$log" | head -n 1)
    [[ -n "$url" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "image-smoke: the operator exited early" >&2; exit 1; }
    sleep 0.2
  done
  [[ -n "$url" ]] || { cat "$log" >&2; echo "image-smoke: the operator did not start" >&2; kill "$pid"; exit 1; }
  node -e 'const r = await fetch(process.argv[1] + "/healthz"); if (r.status !== 200) process.exit(1); console.log(`GET /healthz: ${r.status} ${(await r.text()).trim()}`);' "$url"
  kill -TERM "$pid"
  code=0
  wait "$pid" || code=$?
  [[ "$code" == 0 ]] || { cat "$log" >&2; echo "image-smoke: the operator exited $code on SIGTERM" >&2; exit 1; }
  echo "stopped cleanly on SIGTERM"
fi
step "image-smoke: ok"

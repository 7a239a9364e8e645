#!/usr/bin/env bash
# Builds the real components the tests and the demo run (etcd, kube-apiserver,
# kube-controller-manager, kubectl, Dagu, helm) from the Go module proxy into a
# cache outside the clone, keyed by version, so that every later run (and CI on
# the same machine) reuses them. Nothing built here is ever committed.
#
# usage: scripts/build-components.sh [all|kube|etcd|dagu|dagu-ui|helm|certmanager]...
# prints progress on stderr; prints the cache's bin directory on stdout.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
# Dagu v2.15.1 (github.com/dagucloud/dagu/v2) is what the product targets, but
# this machine's Go module proxy answers 403 for every version of that module;
# github.com/dagu-org/dagu v1.30.3 is the Dagu it serves (docs/adr/0002).
DAGU_MODULE="${DAGU_MODULE:-github.com/dagu-org/dagu}"
DAGU_VERSION="${DAGU_VERSION:-v1.30.3}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.21.2}"
# Dagu v2.15.1's go.mod says go 1.27.0 (the proxy serves that toolchain); v1.30.3 builds with the local Go.
DAGU_TOOLCHAIN="${DAGU_TOOLCHAIN:-auto}"

CACHE="${DAGU_AUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dagu-auth-operator}"
BIN="$CACHE/bin"
mkdir -p "$BIN" "$CACHE/work"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

say() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Runs a long build while printing a heartbeat, so a first run is never silent.
with_progress() {
  local what="$1"; shift
  local start=$SECONDS
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 20
    kill -0 "$pid" 2>/dev/null && say "$what: still building ($((SECONDS - start))s)"
  done
  wait "$pid"
  say "$what: done in $((SECONDS - start))s"
}

# Each binary is named <name>-<version> so that a version bump rebuilds.
have() { [ -x "$BIN/$1-$2" ]; }
link() { ln -sfn "$1-$2" "$BIN/$1"; }

build_kube() {
  if have kube-apiserver "$KUBE_VERSION" && have kube-controller-manager "$KUBE_VERSION" && have kubectl "$KUBE_VERSION"; then
    link kube-apiserver "$KUBE_VERSION"; link kube-controller-manager "$KUBE_VERSION"; link kubectl "$KUBE_VERSION"
    return
  fi
  local dir="$CACHE/work/kube-$KUBE_VERSION"
  mkdir -p "$dir"
  say "kubernetes $KUBE_VERSION: resolving modules (first run only)"
  local gomod
  gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  # k8s.io/kubernetes requires its staging modules at v0.0.0 with replace
  # directives that a dependent module ignores; pin each to its release tag.
  local minor patch
  minor=$(echo "$KUBE_VERSION" | cut -d. -f2); patch=$(echo "$KUBE_VERSION" | cut -d. -f3)
  {
    echo "module dagu-auth-operator/kube-build"
    echo
    echo "go 1.25"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk -v v="v0.$minor.$patch" '{print "replace " $1 " => " $1 " " v}'
  } > "$dir/go.mod"
  cat > "$dir/tools.go" <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$dir" && with_progress "kubernetes $KUBE_VERSION: go mod download" go mod download)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for cmd in kube-apiserver kube-controller-manager kubectl; do
    (cd "$dir" && with_progress "$cmd $KUBE_VERSION" go build -trimpath -ldflags "$ld" -o "$BIN/$cmd-$KUBE_VERSION.tmp" "k8s.io/kubernetes/cmd/$cmd")
    mv "$BIN/$cmd-$KUBE_VERSION.tmp" "$BIN/$cmd-$KUBE_VERSION"
    link "$cmd" "$KUBE_VERSION"
  done
}

build_etcd() {
  if have etcd "$ETCD_VERSION"; then link etcd "$ETCD_VERSION"; return; fi
  local dir="$CACHE/work/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  cat > "$dir/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  printf 'module dagu-auth-operator/etcd-build\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$dir/go.mod"
  say "etcd $ETCD_VERSION: resolving modules"
  (cd "$dir" && go mod tidy >/dev/null)
  (cd "$dir" && with_progress "etcd $ETCD_VERSION" go build -trimpath -ldflags "-s -w" -o "$BIN/etcd-$ETCD_VERSION.tmp" .)
  mv "$BIN/etcd-$ETCD_VERSION.tmp" "$BIN/etcd-$ETCD_VERSION"
  link etcd "$ETCD_VERSION"
}

build_dagu() {
  if have dagu "$DAGU_VERSION"; then link dagu "$DAGU_VERSION"; return; fi
  # Built inside a writable copy of the module so that its own go.mod (and any
  # replace directives) apply, exactly as upstream builds it.
  local src="$CACHE/work/dagu-$DAGU_VERSION-src"
  if [ ! -f "$src/go.mod" ]; then
    say "dagu $DAGU_VERSION: downloading $DAGU_MODULE"
    local dir
    dir=$(cd "$CACHE/work" && GOTOOLCHAIN="$DAGU_TOOLCHAIN" go mod download -json "$DAGU_MODULE@$DAGU_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    rm -rf "$src.tmp" && cp -r "$dir" "$src.tmp" && chmod -R u+w "$src.tmp" && mv "$src.tmp" "$src"
  fi
  (cd "$src" && with_progress "dagu $DAGU_VERSION: go mod download" env GOTOOLCHAIN="$DAGU_TOOLCHAIN" go mod download)
  (cd "$src" && with_progress "dagu $DAGU_VERSION" env GOTOOLCHAIN="$DAGU_TOOLCHAIN" \
    go build -trimpath -ldflags "-s -w -X main.version=${DAGU_VERSION#v}" -o "$BIN/dagu-$DAGU_VERSION.tmp" ./cmd)
  mv "$BIN/dagu-$DAGU_VERSION.tmp" "$BIN/dagu-$DAGU_VERSION"
  link dagu "$DAGU_VERSION"
}

# Dagu with its web UI. The module holds the UI's sources (ui/) but not their build: a plain `go build`
# embeds an empty internal/service/frontend/assets/ and the UI does not load. This builds the UI as
# upstream's Dockerfile does (pnpm install --frozen-lockfile; pnpm build; ui/dist/* and
# schemas/dag.schema.json into the assets folder), inside the writable module copy, with the dependencies
# from the npm registry and pnpm's store under the cache, then a second binary dagu-ui-<version>.
# The assets folder is emptied again afterwards, so the plain `dagu` target stays the module's build.
build_dagu_ui() {
  if have dagu-ui "$DAGU_VERSION"; then link dagu-ui "$DAGU_VERSION"; return; fi
  local src="$CACHE/work/dagu-$DAGU_VERSION-src"
  if [ ! -f "$src/go.mod" ]; then
    # Same writable copy as build_dagu makes.
    say "dagu $DAGU_VERSION: downloading $DAGU_MODULE"
    local dir
    dir=$(cd "$CACHE/work" && GOTOOLCHAIN="$DAGU_TOOLCHAIN" go mod download -json "$DAGU_MODULE@$DAGU_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    rm -rf "$src.tmp" && cp -r "$dir" "$src.tmp" && chmod -R u+w "$src.tmp" && mv "$src.tmp" "$src"
  fi
  local ui="$src/ui" assets="$src/internal/service/frontend/assets" log="$CACHE/work/dagu-ui-$DAGU_VERSION.log"
  # The lockfile is pnpm's; run the pnpm its package.json names (packageManager), from the npm registry.
  local pnpm
  pnpm=$(sed -n 's/.*"packageManager": *"pnpm@\([0-9][0-9.]*\).*/\1/p' "$ui/package.json")
  pnpm="pnpm@${pnpm:-10}"
  : > "$log"
  say "dagu-ui $DAGU_VERSION: node $(node --version), $pnpm; log in $log"
  # A stamp marks a complete UI build (dist/ of an interrupted one is not trusted).
  if [ ! -f "$ui/dist/.dagu-auth-built" ]; then
    drop_stray_dash_dependency "$ui"
    local install=(npx --yes "$pnpm" install --store-dir "$CACHE/work/pnpm-store" --reporter=append-only)
    # A failure leaves a marker (set -e does not apply inside a tested command, so no exit status is trusted).
    local failed="$CACHE/work/dagu-ui-$DAGU_VERSION.install-failed"
    rm -f "$failed"
    (cd "$ui" && with_progress "dagu-ui $DAGU_VERSION: $pnpm install --frozen-lockfile" \
      run_logged "$log" "$failed" "${install[@]}" --frozen-lockfile) || true
    if [ -f "$failed" ]; then
      say "dagu-ui $DAGU_VERSION: the frozen install failed (above); falling back to a plain install"
      rm -f "$failed"
      (cd "$ui" && with_progress "dagu-ui $DAGU_VERSION: $pnpm install --no-frozen-lockfile" \
        run_logged "$log" "$failed" "${install[@]}" --no-frozen-lockfile)
      [ ! -f "$failed" ] || { rm -f "$failed"; exit 1; }
    fi
    rm -rf "$ui/dist"
    (cd "$ui" && with_progress "dagu-ui $DAGU_VERSION: webpack production build (pnpm build)" \
      run_logged "$log" "$failed" npx --yes "$pnpm" run build)
    [ ! -f "$failed" ] || { rm -f "$failed"; exit 1; }
    [ -f "$ui/dist/bundle.js" ] || { say "dagu-ui: webpack produced no dist/bundle.js"; exit 1; }
    touch "$ui/dist/.dagu-auth-built"
  fi
  # webpack.prod.js writes to ui/dist; templates.go embeds `templates/* assets/*`: copy as the Dockerfile does.
  find "$assets" -mindepth 1 ! -name .gitkeep -delete
  (cd "$ui/dist" && find . -mindepth 1 -maxdepth 1 ! -name .dagu-auth-built -exec cp -r {} "$assets/" \;)
  cp "$src/schemas/dag.schema.json" "$assets/"
  say "dagu-ui $DAGU_VERSION: $(find "$assets" -type f ! -name .gitkeep | wc -l) asset files, $(du -sh "$assets" | cut -f1)"
  # go build writes its output only on success: that file is the verdict (the assets are emptied either way).
  rm -f "$BIN/dagu-ui-$DAGU_VERSION.tmp"
  (cd "$src" && with_progress "dagu-ui $DAGU_VERSION: go build" env GOTOOLCHAIN="$DAGU_TOOLCHAIN" \
    go build -trimpath -ldflags "-s -w -X main.version=${DAGU_VERSION#v}" -o "$BIN/dagu-ui-$DAGU_VERSION.tmp" ./cmd) || true
  find "$assets" -mindepth 1 ! -name .gitkeep -delete
  [ -x "$BIN/dagu-ui-$DAGU_VERSION.tmp" ] || { say "dagu-ui $DAGU_VERSION: go build failed (above)"; exit 1; }
  mv "$BIN/dagu-ui-$DAGU_VERSION.tmp" "$BIN/dagu-ui-$DAGU_VERSION"
  link dagu-ui "$DAGU_VERSION"
}

# Dagu v1.30.3's ui/package.json lists a devDependency named "-" (^0.0.1, locked at 0.0.1) that nothing
# imports (an accidental `pnpm add -D -`). The npm registry has no such package (GET /- and its tarball:
# 404), so no install, frozen or not, can succeed with it. Remove it from package.json and its three
# lockfile entries; every other package stays exactly as the lockfile pins it. The originals are kept
# beside them (*.orig). Idempotent.
drop_stray_dash_dependency() {
  local ui="$1"
  grep -q '^    "-": "^0.0.1",$' "$ui/package.json" || return 0
  say "dagu-ui: removing the stray devDependency \"-\" (not in the npm registry) from ui/package.json and pnpm-lock.yaml"
  cp -n "$ui/package.json" "$ui/package.json.orig"; cp -n "$ui/pnpm-lock.yaml" "$ui/pnpm-lock.yaml.orig"
  sed -i '/^    "-": "^0.0.1",$/d' "$ui/package.json"
  awk -v q="'" '
    $0 == "      " q "-" q ":" { skip = 2; next }
    $0 == "  " q "-@0.0.1" q ":" { skip = 2; next }
    $0 == "  " q "-@0.0.1" q ": {}" { skip = 1; next }
    skip > 0 { skip--; next }
    { print }
  ' "$ui/pnpm-lock.yaml.orig" > "$ui/pnpm-lock.yaml"
}

# Runs a command with its output appended to a log file; on failure prints the log's tail and creates
# the marker file (the caller checks it: with_progress's own status is not reliable under `if`/`||`).
run_logged() {
  local log="$1" marker="$2"; shift 2
  if ! "$@" >>"$log" 2>&1 </dev/null; then
    say "failed: $* (last lines of $log):"
    tail -n 40 "$log" >&2
    touch "$marker"
    return 1
  fi
}

build_helm() {
  if have helm "$HELM_VERSION"; then link helm "$HELM_VERSION"; return; fi
  local gobin="$CACHE/work/helm-$HELM_VERSION"
  mkdir -p "$gobin"
  with_progress "helm $HELM_VERSION" env GOBIN="$gobin" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$gobin/helm" "$BIN/helm-$HELM_VERSION"
  link helm "$HELM_VERSION"
}

# cert-manager's real CRDs, read from the module cache (never copied into git).
fetch_certmanager() {
  local out="$CACHE/cert-manager-$CERT_MANAGER_VERSION"
  [ -d "$out/crds" ] && return
  local dir
  dir=$(cd "$CACHE/work" && go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  mkdir -p "$out/crds"
  cp "$dir"/deploy/crds/*.yaml "$out/crds/"
  chmod -R u+w "$out"
  say "cert-manager $CERT_MANAGER_VERSION CRDs: $(ls "$out/crds" | wc -l) files"
}

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(all)
for t in "${targets[@]}"; do
  case "$t" in
    all) build_etcd; build_kube; fetch_certmanager ;;
    kube) build_kube ;;
    etcd) build_etcd ;;
    dagu) build_dagu ;;
    dagu-ui) build_dagu_ui ;;
    helm) build_helm ;;
    certmanager) fetch_certmanager ;;
    *) echo "unknown target: $t" >&2; exit 2 ;;
  esac
done
echo "$BIN"

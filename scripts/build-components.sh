#!/usr/bin/env bash
# Builds the real components the tests and the demo run (etcd, kube-apiserver,
# kube-controller-manager, kubectl, Dagu, helm) from the Go module proxy (Dagu 2
# from a source clone, see below) into a cache outside the clone, keyed by
# version, so that every later run (and CI on the same machine) reuses them.
# Nothing built here, and no Dagu source, is ever committed.
#
# usage: scripts/build-components.sh [all|kube|etcd|dagu|dagu-ui|dagu1|helm|certmanager]...
#   dagu     Dagu v2.15.1 without its web UI     -> bin/dagu-v2.15.1
#   dagu-ui  Dagu v2.15.1 with its web UI        -> bin/dagu-ui-v2.15.1
#   dagu1    Dagu v1.30.3 (the Dagu 1 suite)     -> bin/dagu-v1.30.3
# Dagu gets no unversioned link (which Dagu `dagu` named has changed, and the cache is shared by every
# checkout on the machine): callers name the version (dev/components.ts DAGU_BINARIES).
# prints progress on stderr; prints the cache's bin directory on stdout.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
# Dagu v2.15.1, the Dagu the product targets and every test, the demo and the benchmark run: the Go
# module proxy refuses github.com/dagucloud/dagu/v2, so it is built from a git clone of its public
# repository kept in the cache (DAGU_SOURCE; docs/adr/0005). Dagu v1.30.3 (github.com/dagu-org/dagu, served
# by the proxy) is built as `dagu1` for the small Dagu 1 suite only.
DAGU_VERSION="${DAGU_VERSION:-v2.15.1}"
DAGU_REPO="${DAGU_REPO:-https://github.com/dagucloud/dagu}"
DAGU1_MODULE="${DAGU1_MODULE:-github.com/dagu-org/dagu}"
DAGU1_VERSION="${DAGU1_VERSION:-v1.30.3}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.21.2}"
# Dagu v2.15.1's go.mod says go 1.27.0 (the proxy serves the toolchain); v1.30.3 builds with the local Go.
DAGU_TOOLCHAIN="${DAGU_TOOLCHAIN:-go1.27.3}"

CACHE="${DAGU_AUTH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dagu-auth-operator}"
BIN="$CACHE/bin"
DAGU_SOURCE="${DAGU_SOURCE:-$CACHE/src/dagu}"
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

# --- Dagu v2.15.1, from a source clone ----------------------------------------------------------------
# The module proxy refuses github.com/dagucloud/dagu/v2, so Dagu 2 is built from a git clone of its public
# repository kept in the cache (never in this repository). The build works in a writable copy of the tag
# (git archive), where it leaves out the two integrations whose modules the proxy also refuses
# (docs/adr/0005): the Alibaba Cloud KMS secret provider (internal/secret/providers/alibaba.go, which
# registers itself from init(), so removing the file removes the provider) and the aqua-backed installer of
# a DAG's `tools:` (internal/tools/aqua, replaced by a stand-in written below that refuses every install).
dagu_src_dir() { echo "$CACHE/work/dagu-$DAGU_VERSION-src"; }

# Makes sure $DAGU_SOURCE is a git clone holding the tag $DAGU_VERSION: clones it where missing (what a
# machine with internet access does), else stops saying exactly what to put where.
ensure_dagu_clone() {
  local tag="$DAGU_VERSION^{commit}"
  if [ -d "$DAGU_SOURCE/.git" ] || [ -f "$DAGU_SOURCE/HEAD" ]; then
    git -C "$DAGU_SOURCE" rev-parse --verify --quiet "$tag" >/dev/null && return
    say "dagu $DAGU_VERSION: $DAGU_SOURCE is a git clone without the tag $DAGU_VERSION; trying git fetch --tags"
    timeout 600 git -C "$DAGU_SOURCE" fetch --tags --quiet origin >&2 || true
    git -C "$DAGU_SOURCE" rev-parse --verify --quiet "$tag" >/dev/null && return
  elif [ ! -e "$DAGU_SOURCE" ]; then
    say "dagu $DAGU_VERSION: no source clone at $DAGU_SOURCE; trying git clone --branch $DAGU_VERSION $DAGU_REPO"
    mkdir -p "$(dirname "$DAGU_SOURCE")"
    if timeout 900 git clone --quiet --branch "$DAGU_VERSION" "$DAGU_REPO" "$DAGU_SOURCE.tmp" >&2; then
      mv "$DAGU_SOURCE.tmp" "$DAGU_SOURCE"
      return
    fi
    rm -rf "$DAGU_SOURCE.tmp"
  fi
  cat >&2 <<MSG
[build] Dagu $DAGU_VERSION needs its source and it could not be had here.
[build] Put a git clone of $DAGU_REPO that holds the tag $DAGU_VERSION at
[build]   $DAGU_SOURCE
[build] (for example: git clone --branch $DAGU_VERSION $DAGU_REPO $DAGU_SOURCE on a machine with
[build] internet access, then copy that folder here), or point DAGU_SOURCE at such a clone; then run
[build] scripts/build-components.sh dagu dagu-ui again. Only the tag is read; the clone is never changed.
MSG
  exit 3
}

# The stand-in for internal/tools/aqua: the exported names Dagu's callers use, and an Install that refuses.
write_aqua_standin() {
  local dir="$1"
  rm -rf "$dir" && mkdir -p "$dir"
  cat > "$dir/standin.go" <<'GO'
// Package aqua: written by dagu-auth-operator's scripts/build-components.sh in place of Dagu's aqua-backed
// tool installer, whose module (github.com/aquaproj/aqua/v2) the Go module proxy of the build machine
// refuses. A DAG that declares `tools:` fails with errNotBuilt; everything else in Dagu is unchanged.
package aqua

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/dagucloud/dagu/v2/internal/ir"
	"github.com/dagucloud/dagu/v2/internal/tools"
)

var errNotBuilt = errors.New("installing DAG tools (aqua) is not part of this build")

// Installer refuses every install.
type Installer struct{}

// Option is accepted and ignored.
type Option func(*Installer)

// WithLogger is accepted and ignored.
func WithLogger(*slog.Logger) Option { return func(*Installer) {} }

// WithHTTPClient is accepted and ignored.
func WithHTTPClient(*http.Client) Option { return func(*Installer) {} }

// New returns the refusing installer.
func New(opts ...Option) *Installer {
	installer := &Installer{}
	for _, opt := range opts {
		opt(installer)
	}
	return installer
}

// Install always answers errNotBuilt.
func (*Installer) Install(context.Context, *ir.ToolConfig, tools.InstallOptions) (*tools.Manifest, error) {
	return nil, errNotBuilt
}

var _ tools.Installer = (*Installer)(nil)
GO
}

# swr-openapi: the UI's lockfile pins 5.5.2, which the npm registry here does not serve; 5.5.1 (same
# dependencies and peers) is served and builds. Rewrites the pin in package.json and the lockfile (the
# specifier, the resolved version and the integrity of the tarball), so the install stays frozen.
SWR_OPENAPI_FROM="5.5.2"
SWR_OPENAPI_TO="5.5.1"
SWR_OPENAPI_TO_INTEGRITY="sha512-c50hCrPgp5D2qn0tlu8dl3B27rnGIEjM3nh6okQYgBMyS1aXifjChly4ZB4Czu4qbiJIL6bPZUt146T2O5uBoQ=="
repin_swr_openapi() {
  local ui="$1" from="${SWR_OPENAPI_FROM//./\\.}" to="$SWR_OPENAPI_TO"
  grep -q "\"swr-openapi\": \"$SWR_OPENAPI_FROM\"" "$ui/package.json" || return 0
  say "dagu-ui: swr-openapi $SWR_OPENAPI_FROM is not in the npm registry here; pinning $SWR_OPENAPI_TO in the build copy"
  sed -i "s/\"swr-openapi\": \"$from\"/\"swr-openapi\": \"$to\"/" "$ui/package.json"
  awk -v from="$SWR_OPENAPI_FROM" -v to="$SWR_OPENAPI_TO" -v integrity="$SWR_OPENAPI_TO_INTEGRITY" '
    # importer: "      swr-openapi:" then its specifier and version lines
    $0 == "      swr-openapi:" { importer = 2; print; next }
    importer > 0 { importer--; sub(from, to); print; next }
    # package entry: "  swr-openapi@X:" then its resolution line
    $0 == "  swr-openapi@" from ":" { print "  swr-openapi@" to ":"; resolution = 1; next }
    resolution == 1 && /resolution: \{integrity:/ { print "    resolution: {integrity: " integrity "}"; resolution = 0; next }
    # snapshot key "  swr-openapi@X(peers...):"
    index($0, "  swr-openapi@" from "(") == 1 { sub("swr-openapi@" from, "swr-openapi@" to); print; next }
    { print }
  ' "$ui/pnpm-lock.yaml" > "$ui/pnpm-lock.yaml.new"
  mv "$ui/pnpm-lock.yaml.new" "$ui/pnpm-lock.yaml"
  if grep -q "swr-openapi@$from\|specifier: $from" "$ui/pnpm-lock.yaml" || ! grep -q "$SWR_OPENAPI_TO_INTEGRITY" "$ui/pnpm-lock.yaml"; then
    say "dagu-ui: the lockfile's swr-openapi entries are not where expected; cannot re-pin"
    exit 1
  fi
}

# The writable copy of the tag, prepared once (a stamp marks a finished one).
prepare_dagu_source() {
  local src
  src=$(dagu_src_dir)
  [ -f "$src/.dagu-auth-prepared" ] && return
  ensure_dagu_clone
  say "dagu $DAGU_VERSION: writable copy of the tag from $DAGU_SOURCE into $src"
  rm -rf "$src.tmp" && mkdir -p "$src.tmp"
  git -C "$DAGU_SOURCE" archive --format=tar "$DAGU_VERSION" | tar -x -C "$src.tmp"
  # Left out (docs/adr/0005): see the comment at the top of this section.
  rm -f "$src.tmp/internal/secret/providers/alibaba.go" "$src.tmp/internal/secret/providers/alibaba_test.go"
  write_aqua_standin "$src.tmp/internal/tools/aqua"
  (cd "$src.tmp" && GOTOOLCHAIN="$DAGU_TOOLCHAIN" go mod edit \
    -droprequire=github.com/alibabacloud-go/kms-20160120/v4 -droprequire=github.com/aquaproj/aqua/v2)
  repin_swr_openapi "$src.tmp/ui"
  touch "$src.tmp/.dagu-auth-prepared"
  rm -rf "$src" && mv "$src.tmp" "$src"
}

# go build of ./cmd in a Dagu source tree: $1 binary name, $2 version, $3 source dir, $4 toolchain.
# The version goes into main.version (cmd/main.go; a plain build reports 0.0.0).
go_build_dagu() {
  local name="$1" version="$2" src="$3" toolchain="$4"
  rm -f "$BIN/$name-$version.tmp"
  (cd "$src" && with_progress "$name $version: go build" env GOTOOLCHAIN="$toolchain" \
    go build -trimpath -ldflags "-s -w -X 'main.version=${version#v}'" -o "$BIN/$name-$version.tmp" ./cmd) || true
  # go build writes its output only on success: that file is the verdict.
  [ -x "$BIN/$name-$version.tmp" ] || { say "$name $version: go build failed (above)"; exit 1; }
  mv "$BIN/$name-$version.tmp" "$BIN/$name-$version"
}

# Dagu without its web UI (the assets folder empty, as in the source): what most tests run.
build_dagu() {
  have dagu "$DAGU_VERSION" && return
  prepare_dagu_source
  local src
  src=$(dagu_src_dir)
  find "$src/internal/service/frontend/assets" -mindepth 1 ! -name .gitkeep -delete
  (cd "$src" && with_progress "dagu $DAGU_VERSION: go mod download" env GOTOOLCHAIN="$DAGU_TOOLCHAIN" go mod download)
  go_build_dagu dagu "$DAGU_VERSION" "$src" "$DAGU_TOOLCHAIN"
}

# Dagu with its web UI, built as upstream's Dockerfile does: in ui/, pnpm install --frozen-lockfile and
# pnpm build (webpack.prod.js writes ui/dist), then ui/dist/* into internal/service/frontend/assets/, which
# templates.go embeds (`assets/*`); then a second binary dagu-ui-<version>. The assets folder is emptied
# again afterwards, so the plain `dagu` target stays a build without the UI.
build_dagu_ui() {
  have dagu-ui "$DAGU_VERSION" && return
  prepare_dagu_source
  local src
  src=$(dagu_src_dir)
  local ui="$src/ui" assets="$src/internal/service/frontend/assets" log="$CACHE/work/dagu-ui-$DAGU_VERSION.log"
  # The lockfile is pnpm's; run the pnpm its package.json names (packageManager), from the npm registry.
  local pnpm
  pnpm=$(sed -n 's/.*"packageManager": *"pnpm@\([0-9][0-9.]*\).*/\1/p' "$ui/package.json")
  pnpm="pnpm@${pnpm:-10}"
  : > "$log"
  say "dagu-ui $DAGU_VERSION: node $(node --version), $pnpm; log in $log"
  # A stamp marks a complete UI build (dist/ of an interrupted one is not trusted).
  if [ ! -f "$ui/dist/.dagu-auth-built" ]; then
    local failed="$CACHE/work/dagu-ui-$DAGU_VERSION.failed"
    rm -f "$failed"
    (cd "$ui" && with_progress "dagu-ui $DAGU_VERSION: $pnpm install --frozen-lockfile" \
      run_logged "$log" "$failed" npx --yes "$pnpm" install --frozen-lockfile --store-dir "$CACHE/work/pnpm-store" --reporter=append-only) || true
    [ ! -f "$failed" ] || { rm -f "$failed"; exit 1; }
    rm -rf "$ui/dist"
    (cd "$ui" && with_progress "dagu-ui $DAGU_VERSION: webpack production build (pnpm build)" \
      run_logged "$log" "$failed" npx --yes "$pnpm" run build) || true
    [ ! -f "$failed" ] || { rm -f "$failed"; exit 1; }
    [ -f "$ui/dist/bundle.js" ] || { say "dagu-ui: webpack produced no dist/bundle.js"; exit 1; }
    touch "$ui/dist/.dagu-auth-built"
  fi
  find "$assets" -mindepth 1 ! -name .gitkeep -delete
  (cd "$ui/dist" && find . -mindepth 1 -maxdepth 1 ! -name .dagu-auth-built -exec cp -r {} "$assets/" \;)
  say "dagu-ui $DAGU_VERSION: $(find "$assets" -type f ! -name .gitkeep | wc -l) asset files, $(du -sh "$assets" | cut -f1)"
  (cd "$src" && with_progress "dagu $DAGU_VERSION: go mod download" env GOTOOLCHAIN="$DAGU_TOOLCHAIN" go mod download)
  local status=0
  (go_build_dagu dagu-ui "$DAGU_VERSION" "$src" "$DAGU_TOOLCHAIN") || status=$?
  find "$assets" -mindepth 1 ! -name .gitkeep -delete
  [ "$status" -eq 0 ] || exit "$status"
}

# --- Dagu v1.30.3, from the module proxy (only for the Dagu 1 suite: docs/adr/0005) --------------------
# Built inside a writable copy of the module so that its own go.mod (and any replace directives) apply.
build_dagu1() {
  have dagu "$DAGU1_VERSION" && return
  local src="$CACHE/work/dagu-$DAGU1_VERSION-src"
  if [ ! -f "$src/go.mod" ]; then
    say "dagu $DAGU1_VERSION: downloading $DAGU1_MODULE"
    local dir
    dir=$(cd "$CACHE/work" && go mod download -json "$DAGU1_MODULE@$DAGU1_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    rm -rf "$src.tmp" && cp -r "$dir" "$src.tmp" && chmod -R u+w "$src.tmp" && mv "$src.tmp" "$src"
  fi
  (cd "$src" && with_progress "dagu $DAGU1_VERSION: go mod download" go mod download)
  go_build_dagu dagu "$DAGU1_VERSION" "$src" auto
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
    dagu1) build_dagu1 ;;
    helm) build_helm ;;
    certmanager) fetch_certmanager ;;
    *) echo "unknown target: $t" >&2; exit 2 ;;
  esac
done
echo "$BIN"

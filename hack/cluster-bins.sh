#!/usr/bin/env bash
# Build the local control plane (etcd, kube-apiserver, kubectl) plus helm and
# falcosidekick from their Go modules, through the Go module proxy. Falcosidekick's
# module is refused by some proxies; then its release source tarball, named by
# FALCOSIDEKICK_SRC (the Makefile and .ci/run point it at ../shared/falcosidekick/),
# is built instead, with its dependencies still from the proxy.
#
# Binaries are cached outside the clone, keyed by version, so a fresh clone on the
# same machine only links them. Go's own module and build caches (GOMODCACHE,
# GOCACHE) live in the user's home as usual and make rebuilds incremental.
#
# Usage: hack/cluster-bins.sh [BIN_DIR]   (default: ./bin)
# Honours KUBEBUILDER_ASSETS: if it holds etcd, kube-apiserver and kubectl, those
# are linked instead of built.
set -euo pipefail

K8S_VERSION=v1.36.3
K8S_STAGING_VERSION=v0.36.3
ETCD_VERSION=v3.6.16
HELM_VERSION=v3.21.4
SIDEKICK_VERSION=2.34.1
# falcosidekick tags carry no "v", so Go knows the tag only as this pseudo-version.
SIDEKICK_PSEUDO=v0.0.0-20260603140136-03364bc26b22

here=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=$(mkdir -p "${1:-$here/bin}" && cd "${1:-$here/bin}" && pwd)
cache_root=${FALCO_REPORTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/falco-reporter}
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-auto}

log() { printf '[cluster-bins] %s\n' "$*" >&2; }

need_go() {
  command -v go >/dev/null || { log "Go >= 1.26 is required (or set KUBEBUILDER_ASSETS)"; exit 1; }
}

# link NAME DIR: point bin/NAME at DIR/NAME.
link() { ln -sfn "$2/$1" "$bin_dir/$1"; }

# complete DIR BIN...: stamp DIR as a finished cache entry only if every binary is there.
# (Checked explicitly: errexit does not apply inside functions called from `||` lists.)
complete() {
  local dir=$1; shift
  for b in "$@"; do [[ -x "$dir/$b" ]] || { log "build of $b failed"; return 1; }; done
  touch "$dir/.complete"
}

# built KEY: true when the cache entry KEY is complete.
built() { [[ -f "$cache_root/bins/$1/.complete" ]]; }

# k8s_build OUT CMD...: build k8s.io/kubernetes/cmd/CMD into OUT for each CMD, through a wrapper
# module (k8s.io/kubernetes cannot be `go install`ed: it replaces its staging modules with paths).
k8s_build() {
  local out=$1; shift
  local mod; mod=$(mktemp -d)
  trap 'rm -rf "$mod"; trap - RETURN' RETURN
  ( cd "$mod"
    go mod init falco-reporter.local/k8s-bins >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
    # Each consumer must replace the staging modules with their published versions; read the
    # list from k8s.io/kubernetes's own go.mod.
    gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$gomod" | awk '{print $1}' | sort -u | while read -r m; do
      go mod edit -replace="$m=$m@$K8S_STAGING_VERSION"
    done
    { printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for cmd in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
      printf ')\n'; } > tools.go
    go mod tidy -e >/dev/null
    local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
    local ld="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    mkdir -p "$out"
    for cmd in "$@"; do
      go build -trimpath -ldflags "$ld" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done
  )
}

CONTROL_PLANE_CMDS=(kube-apiserver kubectl kube-controller-manager)
NODE_CMDS=(kube-scheduler kubelet kube-proxy)

build_kubernetes() {
  local out="$cache_root/bins/kubernetes-$K8S_VERSION"
  if ! built "kubernetes-$K8S_VERSION"; then
    need_go
    log "building ${CONTROL_PLANE_CMDS[*]} $K8S_VERSION (cold: ~15 min on 2 cores)"
    k8s_build "$out" "${CONTROL_PLANE_CMDS[@]}"
    complete "$out" "${CONTROL_PLANE_CMDS[@]}" || return 1
  fi
  for cmd in "${CONTROL_PLANE_CMDS[@]}"; do link "$cmd" "$out"; done
}

# A node (`make cluster-up NODE=1`): scheduler, kubelet and kube-proxy from the same wrapper, and
# the pause program every pod sandbox runs (ours: sleeps, reaps children, exits on a signal).
build_node() {
  local out="$cache_root/bins/kubernetes-node-$K8S_VERSION"
  if ! built "kubernetes-node-$K8S_VERSION"; then
    need_go
    log "building ${NODE_CMDS[*]} $K8S_VERSION (~3 min once kube-apiserver is built)"
    k8s_build "$out" "${NODE_CMDS[@]}"
    ( cd "$here/hack/pause" && go build -trimpath -ldflags "-s -w" -o "$out/pause" . )
    complete "$out" "${NODE_CMDS[@]}" pause || return 1
  fi
  for cmd in "${NODE_CMDS[@]}" pause; do link "$cmd" "$out"; done
}

build_etcd() {
  local out="$cache_root/bins/etcd-$ETCD_VERSION"
  if ! built "etcd-$ETCD_VERSION"; then
    need_go
    log "building etcd $ETCD_VERSION"
    local mod; mod=$(mktemp -d)
    trap 'rm -rf "$mod"; trap - RETURN' RETURN
    ( cd "$mod"
      go mod init falco-reporter.local/etcd-bin >/dev/null 2>&1
      go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
      # etcd's server module is a library; its etcdmain.Main is the whole binary.
      cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
      go mod tidy >/dev/null
      mkdir -p "$out"
      go build -trimpath -ldflags "-s -w" -o "$out/etcd" .
    )
    complete "$out" etcd || return 1
  fi
  link etcd "$out"
}

build_helm() {
  local out="$cache_root/bins/helm-$HELM_VERSION"
  if ! built "helm-$HELM_VERSION"; then
    need_go
    log "building helm $HELM_VERSION"
    mkdir -p "$out"
    local major=${HELM_VERSION%%.*}
    GOBIN="$out" go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/$major/internal/version.version=$HELM_VERSION" \
      "helm.sh/helm/$major/cmd/helm@$HELM_VERSION"
    complete "$out" helm || return 1
  fi
  link helm "$out"
}

# sha256 of the release source tarball named by FALCOSIDEKICK_SRC (see ../shared/falcosidekick/SOURCE.txt).
SIDEKICK_SRC_SHA256=5f151819348f1fba7b98742f6d9c3e8d87f3cafbe2b42290180fb41b8bdebe96
SIDEKICK_COMMIT=03364bc26b2262439a5ddeb57e1e354742727e11

# The version variables live in falcosidekick's package main, whatever its import path.
sidekick_ldflags() {
  echo "-s -w -X main.GitVersion=$SIDEKICK_VERSION -X main.gitCommit=$SIDEKICK_COMMIT -X main.gitTreeState=clean"
}

# sidekick_from_module OUT: build through a wrapper module (needs the proxy to serve it).
sidekick_from_module() {
  local out=$1 mod; mod=$(mktemp -d)
  trap 'rm -rf "$mod"; trap - RETURN' RETURN
  ( cd "$mod"
    go mod init falco-reporter.local/falcosidekick-bin >/dev/null 2>&1
    # Repeat the module's own replace: go install refuses modules that carry one.
    go mod edit -replace=github.com/imdario/mergo=dario.cat/mergo@v0.3.16
    go mod download "github.com/falcosecurity/falcosidekick@$SIDEKICK_PSEUDO" 2>/dev/null || exit 3
    go mod edit -require="github.com/falcosecurity/falcosidekick@$SIDEKICK_PSEUDO"
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/falcosecurity/falcosidekick"\n' > tools.go
    go mod tidy -e >/dev/null
    go build -trimpath -ldflags "$(sidekick_ldflags)" -o "$out/falcosidekick" github.com/falcosecurity/falcosidekick
  )
}

# sidekick_from_tarball OUT: build the unpacked release source named by FALCOSIDEKICK_SRC.
sidekick_from_tarball() {
  local out=$1 src=${FALCOSIDEKICK_SRC:-}
  [[ -n "$src" && -f "$src" ]] || { log "set FALCOSIDEKICK_SRC to the falcosidekick $SIDEKICK_VERSION source tarball"; return 1; }
  echo "$SIDEKICK_SRC_SHA256  $src" | sha256sum -c --quiet - || { log "$src: unexpected sha256"; return 1; }
  local dir; dir=$(mktemp -d)
  trap 'rm -rf "$dir"; trap - RETURN' RETURN
  tar -xzf "$src" -C "$dir" --strip-components=1
  ( cd "$dir" && go build -trimpath -ldflags "$(sidekick_ldflags)" -o "$out/falcosidekick" . )
}

build_falcosidekick() {
  local out="$cache_root/bins/falcosidekick-$SIDEKICK_VERSION"
  if ! built "falcosidekick-$SIDEKICK_VERSION"; then
    need_go
    mkdir -p "$out"
    local rc=0
    log "building falcosidekick $SIDEKICK_VERSION (cold: ~10 min on 2 cores)"
    sidekick_from_module "$out" || rc=$?
    if [[ $rc -eq 3 ]]; then
      log "module proxy does not serve falcosidekick; building from FALCOSIDEKICK_SRC"
      sidekick_from_tarball "$out" || return 1
    elif [[ $rc -ne 0 ]]; then return 1; fi
    complete "$out" falcosidekick || return 1
  fi
  link falcosidekick "$out"
}

use_kubebuilder_assets() {
  local d=${KUBEBUILDER_ASSETS:-}
  [[ -n "$d" && -x "$d/etcd" && -x "$d/kube-apiserver" ]] || return 1
  log "using etcd and kube-apiserver from KUBEBUILDER_ASSETS=$d"
  link etcd "$d"; link kube-apiserver "$d"
  if [[ -x "$d/kubectl" ]]; then link kubectl "$d"; else return 2; fi
}

start=$(date +%s)
only=${CLUSTER_BINS_ONLY:-all}
case "$only" in
  all)
    rc=0; use_kubebuilder_assets || rc=$?
    if [[ $rc -eq 1 ]]; then build_etcd; build_kubernetes
    elif [[ $rc -eq 2 ]]; then build_kubernetes; link etcd "$KUBEBUILDER_ASSETS"; link kube-apiserver "$KUBEBUILDER_ASSETS"; fi
    build_helm
    # Only the Falcosidekick tests need it, and `make test` builds it on its own (bin/falcosidekick),
    # so here its absence is a warning: the control plane alone is enough for `make demo`.
    build_falcosidekick || log "WARNING: falcosidekick not built; set FALCOSIDEKICK_SRC (see above)" ;;
  etcd) build_etcd ;;
  kubernetes) build_kubernetes ;;
  helm) build_helm ;;
  falcosidekick) build_falcosidekick ;;
  node) build_node ;;
  *) log "unknown CLUSTER_BINS_ONLY=$only"; exit 2 ;;
esac
log "ready in $bin_dir after $(( $(date +%s) - start ))s"

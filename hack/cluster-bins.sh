#!/usr/bin/env bash
# Build the local control plane (etcd, kube-apiserver, kubectl) plus helm and
# falcosidekick from their Go modules, through the Go module proxy.
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

build_kubernetes() {
  local key="kubernetes-$K8S_VERSION" out="$cache_root/bins/kubernetes-$K8S_VERSION"
  if ! built "$key"; then
    need_go
    log "building kube-apiserver, kubectl and kube-controller-manager $K8S_VERSION (cold: ~15 min on 2 cores)"
    local mod; mod=$(mktemp -d)
    trap 'rm -rf "$mod"' RETURN
    ( cd "$mod"
      go mod init falco-reporter.local/k8s-bins >/dev/null 2>&1
      go mod edit -require="k8s.io/kubernetes@$K8S_VERSION"
      # k8s.io/kubernetes points its staging modules at ./staging paths; a consumer
      # must replace each with its published version. Read the list from its go.mod.
      gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
      grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$gomod" | awk '{print $1}' | sort -u | while read -r m; do
        go mod edit -replace="$m=$m@$K8S_STAGING_VERSION"
      done
      cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
      go mod tidy -e >/dev/null
      local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
      local ld="-s -w"
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
      done
      mkdir -p "$out"
      for cmd in kube-apiserver kubectl kube-controller-manager; do
        go build -trimpath -ldflags "$ld" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
      done
    )
    complete "$out" kube-apiserver kubectl kube-controller-manager || return 1
  fi
  for cmd in kube-apiserver kubectl kube-controller-manager; do link "$cmd" "$out"; done
}

build_etcd() {
  local out="$cache_root/bins/etcd-$ETCD_VERSION"
  if ! built "etcd-$ETCD_VERSION"; then
    need_go
    log "building etcd $ETCD_VERSION"
    local mod; mod=$(mktemp -d)
    trap 'rm -rf "$mod"' RETURN
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

build_falcosidekick() {
  local out="$cache_root/bins/falcosidekick-$SIDEKICK_VERSION"
  if ! built "falcosidekick-$SIDEKICK_VERSION"; then
    need_go
    log "building falcosidekick $SIDEKICK_VERSION"
    local mod; mod=$(mktemp -d)
    trap 'rm -rf "$mod"' RETURN
    ( cd "$mod"
      go mod init falco-reporter.local/falcosidekick-bin >/dev/null 2>&1
      go mod edit -require="github.com/falcosecurity/falcosidekick@$SIDEKICK_PSEUDO"
      # Repeat the module's own replace: go install refuses modules that carry one.
      go mod edit -replace=github.com/imdario/mergo=dario.cat/mergo@v0.3.16
      cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/falcosecurity/falcosidekick"
GO
      go mod tidy -e >/dev/null
      mkdir -p "$out"
      go build -trimpath \
        -ldflags "-s -w -X github.com/falcosecurity/falcosidekick/internal/pkg/version.GitVersion=$SIDEKICK_VERSION" \
        -o "$out/falcosidekick" github.com/falcosecurity/falcosidekick
    )
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
    # The module proxy reachable here answers 403 for github.com/falcosecurity/falcosidekick;
    # everything else works without it, so its absence is a warning, not a failure.
    build_falcosidekick || log "WARNING: falcosidekick could not be built (module proxy refused it); tests needing it are not run" ;;
  etcd) build_etcd ;;
  kubernetes) build_kubernetes ;;
  helm) build_helm ;;
  falcosidekick) build_falcosidekick ;;
  *) log "unknown CLUSTER_BINS_ONLY=$only"; exit 2 ;;
esac
log "ready in $bin_dir after $(( $(date +%s) - start ))s"

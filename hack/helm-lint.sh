#!/usr/bin/env bash
# Lint and render the falco-reporter chart with its default values and with every documented
# example values file (samples/values-*.yaml). A lint error or warning, a render error, or a
# rendered document without apiVersion/kind/metadata.name fails the script.
#
#   hack/helm-lint.sh            # uses bin/helm, else helm on PATH
#   HELM=/path/to/helm hack/helm-lint.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=helm/falco-reporter
HELM="${HELM:-}"
if [[ -z "$HELM" ]]; then
  if [[ -x bin/helm ]]; then HELM=bin/helm; else HELM=$(command -v helm || true); fi
fi
if [[ -z "$HELM" ]]; then
  echo "helm-lint: no helm binary (run 'make cluster-bins' or set HELM=...)" >&2
  exit 2
fi
PY=python3
[[ -x .venv/bin/python ]] && PY=.venv/bin/python

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The chart's CRDs must be the generated ones.
for crd in crds/*.yaml; do
  if ! cmp -s "$crd" "$CHART/crds/$(basename "$crd")"; then
    echo "helm-lint: $CHART/crds/$(basename "$crd") differs from $crd (cp crds/*.yaml $CHART/crds/)" >&2
    exit 1
  fi
done

sets=("default")
for f in samples/values-*.yaml; do
  [[ -e "$f" ]] && sets+=("$f")
done

status=0
for s in "${sets[@]}"; do
  args=()
  [[ "$s" != default ]] && args=(-f "$s")
  name=$(basename "$s" .yaml)
  echo "== $name"
  if ! "$HELM" lint --strict "$CHART" "${args[@]}" >"$out/$name.lint" 2>&1; then
    cat "$out/$name.lint" >&2
    status=1
    continue
  fi
  if ! "$HELM" template falco-reporter "$CHART" --namespace falco-reporter --include-crds \
      "${args[@]}" >"$out/$name.yaml" 2>"$out/$name.err"; then
    cat "$out/$name.err" >&2
    status=1
    continue
  fi
  # Every rendered document must parse and carry apiVersion, kind and metadata.name.
  if ! "$PY" - "$out/$name.yaml" <<'PYEOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
bad = [d for d in docs if not (d.get("apiVersion") and d.get("kind") and (d.get("metadata") or {}).get("name"))]
if bad or not docs:
    print(f"helm-lint: {len(bad)} malformed of {len(docs)} rendered objects", file=sys.stderr)
    sys.exit(1)
print(f"   {len(docs)} objects: " + ", ".join(sorted({d['kind'] for d in docs})))
PYEOF
  then
    status=1
  fi
done
exit $status

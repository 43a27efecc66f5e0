#!/usr/bin/env bash
# Run Slither offline over contracts/*.sol (see /work/shared/TOOLCHAIN.md).
# - the solc-js shim is passed explicitly with --solc, and its folder comes before .venv/bin on
#   PATH, because the solc-select shim that slither-analyzer installs hangs offline;
# - exits non-zero if any High or Medium finding remains. Findings that are understood are
#   justified in the source with `// slither-disable-next-line <detector>` and a reason.
# Usage: scripts/slither.sh [extra slither args]   (run from anywhere; JSON report in reports/)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/scripts/solc-shim:$ROOT/node_modules/.bin:$ROOT/.venv/bin:$PATH"
export SOLCX_BINARY_PATH="$ROOT/scripts/solc-shim"
mkdir -p reports
REPORT="reports/slither.json"
rm -f "$REPORT"
set +e
"$ROOT/.venv/bin/slither" contracts \
  --solc-standard-json \
  --solc "$ROOT/scripts/solc-shim/solc" \
  --solc-remaps "@openzeppelin=node_modules/@openzeppelin" \
  --filter-paths node_modules \
  --exclude-informational --exclude-optimization --exclude-low \
  --json "$REPORT" "$@"
status=$?
set -e
# slither exits 255 when it reports anything; decide on High/Medium from the JSON.
"$ROOT/.venv/bin/python" - "$REPORT" "$status" <<'PY'
import json, sys
path, status = sys.argv[1], int(sys.argv[2])
try:
    data = json.load(open(path))
except Exception as exc:  # slither itself failed
    print(f"slither.sh: no report ({exc}); slither exit status {status}", file=sys.stderr)
    sys.exit(2)
if not data.get("success", False):
    print("slither.sh: slither failed:", data.get("error"), file=sys.stderr)
    sys.exit(2)
found = [d for d in data.get("results", {}).get("detectors", []) if d.get("impact") in ("High", "Medium")]
for d in found:
    print(f"[{d['impact']}] {d['check']}: {d['description'].strip().splitlines()[0]}")
print(f"slither.sh: {len(found)} untriaged High/Medium finding(s)")
sys.exit(1 if found else 0)
PY

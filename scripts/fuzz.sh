#!/usr/bin/env bash
# The long fuzz run over onnxbridge's loaders (CI runs a short, derandomised one with the suite).
#   bash scripts/fuzz.sh            # 2000 inputs per loader, random each run
#   bash scripts/fuzz.sh 20000      # more
# A failure prints the smallest input hypothesis found: add it to tests/fuzz/test_fuzz_regressions.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXBRIDGE_FUZZ=long ONNXBRIDGE_FUZZ_EXAMPLES="${1:-2000}"
exec .venv/bin/python -m pytest tests/fuzz -p no:cacheprovider -q -n "${JOBS:-2}" "${@:2}"

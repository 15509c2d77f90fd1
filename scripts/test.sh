#!/usr/bin/env bash
# Set up .venv with every test dependency, then run the test suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
exec .venv/bin/python -m pytest -n 2 "$@"

#!/usr/bin/env bash
# Set up .venv with every test dependency, then run the test suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
# Headless Chromium renders the HTML report in tests/test_report_html.py (skipped where absent).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
    || echo "chromium could not be installed; the HTML render test will be skipped" >&2
fi
# Static checks first, on the configuration in pyproject.toml: any finding fails the run.
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy
exec .venv/bin/python -m pytest -n 2 "$@"

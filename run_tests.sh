#!/usr/bin/env bash
# Quickstart command 2: set up .venv if needed, then run the test suite.
# Extra arguments go to pytest (e.g. ./run_tests.sh -m "not slow").
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh
source .venv/bin/activate
ruff check blat_core stages tests benchmarks
python -m pytest -q "$@"

#!/usr/bin/env bash
# Re-create requirements.lock from pyproject.toml's ranges (dependencies + the dev extra), for every
# platform and Python >= 3.11, with hashes. Keeps the locked versions that still satisfy the ranges;
# `scripts/lock.sh --upgrade` (or `--upgrade-package NAME`) moves to newer releases.
# Then run ./run_tests.sh: the setup installs the new lock and tests/test_environment.py checks it.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
[ -x "$uv" ] || { echo "error: $uv is missing: run scripts/setup_env.sh first (uv is in the dev extra)" >&2; exit 1; }
"$uv" pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
  --custom-compile-command "scripts/lock.sh" -o requirements.lock "$@"

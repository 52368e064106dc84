#!/usr/bin/env bash
# Quickstart command 2: set up .venv if needed, then run the test suite.
# Extra arguments go to pytest (e.g. ./run_tests.sh -m "not slow").
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh
# Real recordings for tests/test_real_layouts.py: Debian's freedesktop sound theme (0.5 MB of Ogg files).
if [ ! -d /usr/share/sounds/freedesktop/stereo ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing sound-theme-freedesktop with apt-get (real recordings for the ingest tests)" >&2
  apt-get install -y -qq sound-theme-freedesktop >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq sound-theme-freedesktop >/dev/null; }
fi
source .venv/bin/activate
ruff check blat_core stages tests benchmarks
python -m pytest -q "$@"

#!/usr/bin/env bash
# Quickstart command 2: set up .venv if needed, then run the test suite.
# Extra arguments go to pytest (e.g. ./run_tests.sh -m "not slow").
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh
# Test-only system packages: real recordings for tests/test_real_layouts.py (Debian's freedesktop sound
# theme, 0.5 MB of Ogg files), `zip` (makes and joins FSD50K-style multi-part archives) and headless
# Chromium with its WebDriver for tests/test_serve.py's browser test (about 35 s to install).
wanted=()
[ -d /usr/share/sounds/freedesktop/stereo ] || wanted+=(sound-theme-freedesktop)
command -v zip >/dev/null || wanted+=(zip)
[ -x /usr/bin/chromium ] || wanted+=(chromium)
[ -x /usr/bin/chromedriver ] || wanted+=(chromium-driver)
if [ ${#wanted[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${wanted[*]} with apt-get (for the tests)" >&2
  apt-get install -y -qq "${wanted[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq "${wanted[@]}" >/dev/null; }
fi
source .venv/bin/activate
ruff check blat_core stages tests benchmarks
python -m pytest -q "$@"

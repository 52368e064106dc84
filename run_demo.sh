#!/usr/bin/env bash
# Quickstart command 1: set up .venv if needed, then run the whole pipeline on the demo corpus.
# Extra arguments go to `dvc repro` (e.g. ./run_demo.sh prepare@esc50).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh
source .venv/bin/activate
dvc repro "$@"

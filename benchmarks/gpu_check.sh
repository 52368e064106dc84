#!/usr/bin/env bash
# The GPU check, one prepared script (sized for at most 8 minutes on one H100/H200, not yet run on one;
# see benchmarks/gpu_check.py):
#   benchmarks/gpu_check.sh             # on a GPU: writes benchmarks/results/gpu_check_<gpu>.json
#   benchmarks/gpu_check.sh --dry-run   # the same code at toy sizes on the CPU (CI runs this)
# Uses the project's .venv when there is one, else python3 (a GPU machine's stock PyTorch image: it needs
# torch, transformers, h5py, pyarrow, numpy, pyyaml and pytest, nothing downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && python=.venv/bin/python
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" benchmarks/gpu_check.py "$@"

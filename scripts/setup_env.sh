#!/usr/bin/env bash
# Create the project's virtual environment in .venv (if missing) and install the project with its
# dev extra; re-installs only when pyproject.toml changed. Used by run_demo.sh and run_tests.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "error: Python >= 3.10 is required ($python is $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if [ ! -x .venv/bin/pip ]; then
  rm -rf .venv
  if ! "$python" -m venv .venv >/dev/null 2>&1; then
    # Debian and Ubuntu ship the venv module separately.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing python3-venv with apt-get" >&2
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      rm -rf .venv && "$python" -m venv .venv
    else
      echo "error: '$python -m venv' failed: install the venv module (sudo apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi

# Java runs pycocoevalcap's tokenizer and METEOR (caption metrics).
if ! command -v java >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Java (default-jre-headless) with apt-get for the caption metrics" >&2
    apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null
  else
    echo "warning: no java on PATH; caption metrics need it (sudo apt-get install default-jre-headless)" >&2
  fi
fi

stamp=.venv/.installed-pyproject
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "installing the project and its dependencies into .venv (first time: a few minutes)" >&2
  if ! .venv/bin/python -m pip install --disable-pip-version-check -q -e ".[dev]" >.venv/pip.log 2>&1; then
    tail -n 40 .venv/pip.log >&2
    echo "error: pip install failed; the full log is .venv/pip.log" >&2
    exit 1
  fi
  echo "$wanted" >"$stamp"
fi

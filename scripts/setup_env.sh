#!/usr/bin/env bash
# Create the project's virtual environment in .venv (if missing) and install exactly requirements.lock
# (every package, transitive ones included, at the locked version and hash), then the project itself
# (editable, no dependencies). Re-installs when the lock or pyproject.toml changed; removes packages
# the lock no longer lists; then checks the result (python -m blat_core.app.environment). Used by
# run_demo.sh and run_tests.sh. Update the lock with scripts/lock.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Python >= 3.11 is required ($python is $("$python" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
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

pip=(.venv/bin/python -m pip --disable-pip-version-check)
stamp=.venv/.installed-lock
wanted=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "installing requirements.lock into .venv (first time: a few minutes; ~6 GB, ~8 GB while unpacking)" >&2
  rm -f "$stamp"
  # A first install peaks at about 8 GB on this disk (wheels unpacked beside the 6 GB venv, measured):
  # say so before pip fails half-way with "No space left on device". Unpack next to the venv, not in
  # /tmp (often a small tmpfs), and keep no second copy of the downloads in pip's cache.
  need_gb=9
  if ! compgen -G ".venv/lib/python3*/site-packages/torch" >/dev/null; then
    free_gb=$(df -Pk .venv | awk 'NR==2 {print int($4 / 1048576)}')
    if [ "$free_gb" -lt "$need_gb" ]; then
      echo "error: installing needs about $need_gb GB free on the disk of $PWD/.venv; it has $free_gb GB." >&2
      echo "       Free some space (or clone the project onto a larger disk) and run this again." >&2
      exit 1
    fi
  fi
  mkdir -p .venv/tmp
  export TMPDIR=$PWD/.venv/tmp
  if ! "${pip[@]}" install -q --no-cache-dir --require-hashes --no-deps -r requirements.lock >.venv/pip.log 2>&1; then
    tail -n 40 .venv/pip.log >&2
    echo "error: installing requirements.lock failed; the full log is .venv/pip.log" >&2
    exit 1
  fi
  # Packages an older lock installed and this one does not list.
  extras=$(.venv/bin/python -m blat_core.app.environment --extras)
  if [ -n "$extras" ]; then
    echo "removing packages the lock no longer lists: $(echo $extras)" >&2
    "${pip[@]}" uninstall -q -y $extras >>.venv/pip.log 2>&1
  fi
  # The project itself; its build backend (setuptools) is in the lock, hence no build isolation.
  if ! "${pip[@]}" install -q --no-deps --no-build-isolation -e . >>.venv/pip.log 2>&1; then
    tail -n 40 .venv/pip.log >&2
    echo "error: installing the project failed; the full log is .venv/pip.log" >&2
    exit 1
  fi
  # Installed == lock, and torchaudio's compiled extension loads beside this torch (once per install).
  .venv/bin/python -m blat_core.app.environment --lock requirements.lock
  rm -rf .venv/tmp
  unset TMPDIR
  echo "$wanted" >"$stamp"
fi

#!/usr/bin/env bash
# Create .venv and install the pinned dependencies (re-run only when requirements change).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "bootstrap: installing python3-venv with apt-get" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv .venv
    else
      echo "bootstrap: cannot create a virtual environment; install python3-venv (sudo apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt requirements.lock | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # requirements.lock pins the transitive runtime dependencies to what the image installs. Used as constraints
  # without its hashes: a hash anywhere would make pip demand hashes for the test tools too.
  sed -n 's/^\([A-Za-z0-9][^\\]*[^\\ ]\) *\\\?$/\1/p' requirements.lock > .venv/lock-constraints.txt
  .venv/bin/python -m pip install -q -r requirements-dev.txt -c .venv/lock-constraints.txt
  echo "$want" > "$stamp"
fi

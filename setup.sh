#!/usr/bin/env bash
# Sets the project up: a Python 3.10 virtual environment in .venv (with pip inside, because TFX packages
# user modules with `python -m pip`), the committed lock file, and the project itself in editable mode.
# Idempotent: a second run only checks that the lock file has not changed since the last install.
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
STAMP="$VENV/.installed-lock"

find_python310() {
  local candidate
  if candidate=$(command -v python3.10 2>/dev/null) && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    echo "$candidate"; return 0
  fi
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10 /usr/local/bin/python3.10 /usr/bin/python3.10; do
    if [ -x "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

lock_digest() { cat requirements.lock setup.py | sha256sum | cut -d' ' -f1; }

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(lock_digest)" ]; then
  touch "$STAMP"  # newer than setup.sh again, so make does not call this again
  echo "setup.sh: .venv is up to date with requirements.lock"
  exit 0
fi

if ! PYTHON=$(find_python310); then
  cat >&2 <<'MSG'
setup.sh: no Python 3.10 interpreter found (TFX 1.16 needs Python >=3.9,<3.11).
Looked on PATH for python3.10 and in ${PYENV_ROOT:-~/.pyenv}/versions/3.10*/bin.
Install one, e.g. `pyenv install 3.10.13` or `apt-get install python3.10 python3.10-venv`, then re-run ./setup.sh.
MSG
  exit 1
fi
echo "setup.sh: using $PYTHON ($("$PYTHON" --version))"

if ! command -v uv >/dev/null 2>&1; then
  echo "setup.sh: installing uv (fast resolver/installer) with pip"
  # (PIP_ROOT_USER_ACTION: no warning about installing as root, e.g. in a container)
  PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --user uv || PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
UV=$(command -v uv || echo "$PYTHON -m uv")
# The installers' output goes to a log file; on failure its end is printed.
LOG=setup.log
START=$(date +%s)
install() {
  if ! "$@" >>"$LOG" 2>&1; then
    echo "setup.sh: failed: $*" >&2
    tail -n 30 "$LOG" >&2
    echo "setup.sh: the whole log is $LOG" >&2
    exit 1
  fi
}
: >"$LOG"

if [ ! -x "$VENV/bin/python" ]; then
  install $UV venv --seed --python "$PYTHON" "$VENV"
fi
echo "setup.sh: installing requirements.lock into $VENV (first time takes a few minutes; log: $LOG)"
install $UV pip install --python "$VENV/bin/python" -r requirements.lock
# compat mode: a .pth entry for the repository root, so packages added later import without a reinstall
install $UV pip install --python "$VENV/bin/python" --no-deps --config-settings editable_mode=compat -e .
install "$VENV/bin/python" -m pip --version  # TFX needs pip inside the venv
lock_digest > "$STAMP"
echo "setup.sh: done in $(( $(date +%s) - START )) s. Try: make run   (or: make test)"

#!/usr/bin/env bash
# Creates the Rasa 3.6 virtualenv (Python 3.10) in $RASA_VENV (common.sh: a per-user cache) from the pinned
# requirements.txt. Idempotent: does nothing when that exact set is already installed.
set -euo pipefail
source "$(dirname "$0")/common.sh"

stamp="$RASA_VENV/.installed"
wanted="$(sha256sum "$RASA_DIR/requirements.txt" | cut -d' ' -f1)"
if [ -x "$RASA_VENV/bin/rasa" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  echo "Rasa is installed in $RASA_VENV"
  exit 0
fi

python="${RASA_PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in /root/.pyenv/versions/3.10.13/bin/python python3.10; do
    if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
  done
fi
if [ -z "$python" ] || ! "$python" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
  echo "Rasa 3.6 needs Python 3.10: set RASA_PYTHON to a python3.10 interpreter" >&2
  exit 1
fi

echo "Installing Rasa into $RASA_VENV with $python (takes a few minutes)"
rm -rf "$RASA_VENV"
"$python" -m venv "$RASA_VENV"
"$RASA_VENV/bin/python" -m pip install -q --upgrade pip
"$RASA_VENV/bin/python" -m pip install -q -r "$RASA_DIR/requirements.txt"
"$RASA_VENV/bin/rasa" --version >/dev/null
echo "$wanted" > "$stamp"
echo "Rasa installed: $("$RASA_VENV/bin/python" -m pip show rasa | grep '^Version')"

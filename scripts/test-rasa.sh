#!/usr/bin/env bash
# The Rasa integration tests: installs Rasa 3.6 (once), trains the NLU model on the knowledge
# base (when it changed), then runs `pytest -m rasa` (which starts its own server).
# Prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."
step() {
  local name="$1"; shift
  local start=$SECONDS
  "$@"
  times+=("$name: $((SECONDS - start)) s")
}
times=()
trap 'printf "%s\n" "${times[@]}"' EXIT
step "make install" make -s install
step "rasa setup (pip install)" bash scripts/rasa/setup.sh
step "rasa train" bash scripts/rasa/train.sh
step "pytest -m rasa" .venv/bin/python -m pytest -q -m rasa "$@"

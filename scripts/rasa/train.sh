#!/usr/bin/env bash
# Exports the knowledge base as a Rasa project (otklik rasa export) and trains the NLU model
# into scripts/rasa/work/models/kb.tar.gz. Skips training when the export did not change.
# Needs: make install (for otklik) and scripts/rasa/setup.sh.
set -euo pipefail
source "$(dirname "$0")/common.sh"

otklik="${OTKLIK:-$REPO_ROOT/.venv/bin/otklik}"
if [ ! -x "$otklik" ]; then
  echo "otklik not found at $otklik: run 'make install' first" >&2
  exit 1
fi
if [ ! -x "$RASA_VENV/bin/rasa" ]; then
  echo "Rasa is not installed: run scripts/rasa/setup.sh first" >&2
  exit 1
fi

"$otklik" rasa export "$RASA_PROJECT" "$@"
# The model depends on the export and on the Rasa packages that trained it.
fingerprint="$(cat "$RASA_PROJECT/export.sha256" "$RASA_DIR/requirements.txt" | sha256sum | cut -d' ' -f1)"
stamp="$RASA_MODEL.fingerprint"
if [ -f "$RASA_MODEL" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$fingerprint" ]; then
  echo "The knowledge base did not change: keeping $RASA_MODEL"
  exit 0
fi
cached="$RASA_MODEL_CACHE/$fingerprint.tar.gz"
mkdir -p "$(dirname "$RASA_MODEL")"
if [ -f "$cached" ]; then
  cp "$cached" "$RASA_MODEL"
  echo "$fingerprint" > "$stamp"
  echo "A model trained on this exact export is cached: $cached"
  exit 0
fi

rm -f "$stamp"
log="$RASA_WORK/train.log"
echo "Training the Rasa NLU model (log: $log)"
if ! (cd "$RASA_PROJECT" && "$RASA_VENV/bin/rasa" train nlu --out "$(dirname "$RASA_MODEL")" \
    --fixed-model-name "$(basename "$RASA_MODEL" .tar.gz)") >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "rasa train failed: see $log" >&2
  exit 1
fi
echo "$fingerprint" > "$stamp"
echo "Model trained: $RASA_MODEL"
# Keep it in the cache (written under a temporary name, then renamed: a concurrent or killed
# run never leaves half a model there), with the four most recent others.
mkdir -p "$RASA_MODEL_CACHE"
cp "$RASA_MODEL" "$cached.tmp.$$" && mv "$cached.tmp.$$" "$cached"
ls -t "$RASA_MODEL_CACHE"/*.tar.gz | tail -n +6 | xargs -r rm -f

#!/usr/bin/env bash
# Starts the Rasa server (rasa run --enable-api) on 127.0.0.1:PORT in the background with the
# model from train.sh, waits until GET /status answers, and prints "URL PID".
# Stop it with: kill PID. Usage: serve.sh PORT [TIMEOUT_SECONDS]
set -euo pipefail
source "$(dirname "$0")/common.sh"

port="${1:?usage: serve.sh PORT [TIMEOUT_SECONDS]}"
timeout="${2:-300}"
if [ ! -f "$RASA_MODEL" ]; then
  echo "No model at $RASA_MODEL: run scripts/rasa/train.sh first" >&2
  exit 1
fi
url="http://127.0.0.1:$port"
log="$RASA_WORK/server-$port.log"
cd "$RASA_PROJECT"
"$RASA_VENV/bin/rasa" run --enable-api -i 127.0.0.1 -p "$port" -m "$RASA_MODEL" \
  --endpoints endpoints.yml --credentials credentials.yml >"$log" 2>&1 &
pid=$!

deadline=$((SECONDS + timeout))
until "$RASA_VENV/bin/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
    "$url/status" >/dev/null 2>&1; do
  if ! kill -0 "$pid" 2>/dev/null; then
    tail -n 30 "$log" >&2
    echo "Rasa server exited before answering: see $log" >&2
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    kill "$pid" 2>/dev/null || true
    echo "Rasa server did not answer $url/status within ${timeout}s: see $log" >&2
    exit 1
  fi
  sleep 1
done
echo "$url $pid"

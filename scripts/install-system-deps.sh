#!/usr/bin/env bash
# System packages the test suite needs (real peers, not fakes). Idempotent; needs root (CI is root).
set -euo pipefail
packages=()
# Each line: a command that must exist, and the Debian package that provides it.
while read -r cmd pkg; do
  [ -z "$cmd" ] && continue
  command -v "$cmd" >/dev/null 2>&1 || packages+=("$pkg")
done <<'LIST'
chromium chromium
dovecot dovecot-imapd
LIST
if [ "${#packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages: ${packages[*]} (run as root: apt-get install ${packages[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

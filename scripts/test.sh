#!/usr/bin/env bash
# Runs the test suite. Database tests run on SQLite and on PostgreSQL (OTKLIK_TEST_PG_URL,
# default: the local server on 127.0.0.1:5432, database "test"). In CI, PostgreSQL is required.
set -euo pipefail
cd "$(dirname "$0")/.."
export OTKLIK_TEST_PG_URL="${OTKLIK_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
if [ -n "${CI:-}" ]; then export OTKLIK_REQUIRE_PG=1; fi
# Two worker processes (OTKLIK_TEST_WORKERS; 0 runs in this process): much of the suite
# waits on subprocesses, servers and Chromium, so two workers take ~40% less time even on
# two cores. A module's tests stay on one worker (--dist loadfile): module-scoped servers
# start once, and the timing-sensitive tests of a module never compete with each other.
workers="${OTKLIK_TEST_WORKERS:-2}"
if [ "$workers" = 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
exec .venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"

#!/usr/bin/env bash
# Runs the test suite. Database tests run on SQLite and on PostgreSQL (OTKLIK_TEST_PG_URL,
# default: the local server on 127.0.0.1:5432, database "test"). In CI, PostgreSQL is required.
set -euo pipefail
cd "$(dirname "$0")/.."
export OTKLIK_TEST_PG_URL="${OTKLIK_TEST_PG_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"
if [ -n "${CI:-}" ]; then export OTKLIK_REQUIRE_PG=1; fi
exec .venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# The whole test suite, against real services: installs what is missing, starts the dev stack
# (idempotent; a stack already running is reused), type-checks, then runs every test file.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash infra/stack.sh start
if ! command -v chromium >/dev/null; then
  echo "==> installing Debian's chromium for the dashboard's browser test"
  apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }
fi
echo "==> type-check"
node_modules/.bin/tsc --noEmit -p .
node_modules/.bin/tsc --noEmit -p client/dashboard/web   # the dashboard's browser code (DOM types)
echo "==> tests"
# One file at a time: the pipeline tests each start a worker and a gateway, and this machine has 2 cores.
node --import tsx --test --test-concurrency=1 --test-reporter=spec $(find test -name '*.test.ts' | sort)
echo "==> test suite passed in $(( $(date +%s) - start ))s"

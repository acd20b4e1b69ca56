#!/usr/bin/env bash
# The whole test suite. Installs what is missing, then runs the cheapest checks first so a broken change
# fails in seconds: lint, type-check, the unit tier (no services), then starts the dev stack (idempotent:
# a running stack is reused) and runs the integration tier against the real services.
#
#   bash scripts/test.sh          everything
#   npm run test:unit             the unit tier alone (no stack needed)
#   npm run test:integration      the integration tier alone (needs `bash infra/stack.sh start`)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
phase() { printf '\n==> %s (%ss so far)\n' "$1" "$(($(date +%s) - start))"; }

phase "npm dependencies"
bash infra/stack.sh install node
phase "lint (biome check)"
node_modules/.bin/biome check .
phase "type-check"
node_modules/.bin/tsc --noEmit -p .
node_modules/.bin/tsc --noEmit -p client/dashboard/web # the dashboard's browser code (DOM types)
phase "unit tier"
bash scripts/test-tier.sh unit

phase "dev stack"
bash infra/stack.sh start
# the Kubernetes cluster: its first start on a machine builds Kubernetes from source (~13 min on 2 cores)
phase "dev stack: kubernetes"
bash infra/stack.sh start kubernetes
if ! command -v chromium >/dev/null; then
  echo "==> installing Debian's chromium for the dashboard's browser test"
  apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }
fi
phase "integration tier"
bash scripts/test-tier.sh integration
echo "==> test suite passed in $(($(date +%s) - start))s"

#!/usr/bin/env bash
# Ferry's main job on a fresh clone: install what is missing, start the local stack and Ferry's own
# services, one-click deploy the example model, print the endpoint, dashboard and Temporal UI URLs,
# and send one real inference.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/stack.sh start
exec node_modules/.bin/tsx client/cli/main.ts demo

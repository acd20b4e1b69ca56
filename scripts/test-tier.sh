#!/usr/bin/env bash
# One tier of the test suite (scripts/test.sh runs both, unit first).
#
#   bash scripts/test-tier.sh unit          every test that needs no service: *.test.ts but not *.integration.test.ts
#   bash scripts/test-tier.sh integration   the tests that need the dev stack (and the container runtime,
#                                           the image build inputs, a browser): *.integration.test.ts
#
# Extra arguments go to `node --test` (e.g. --test-name-pattern). A test file belongs to the integration
# tier when it needs anything beyond node_modules and Temporal's test server: name it *.integration.test.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
tier="${1:-}"
[[ $# -gt 0 ]] && shift
case "$tier" in
  unit)
    # The workflow tests run on Temporal's time-skipping test server (installed once into the cache).
    bash scripts/install-test-server.sh >/dev/null
    mapfile -t files < <(find test -name '*.test.ts' ! -name '*.integration.test.ts' | sort)
    # Two at a time: they are independent (temp dirs, free ports), and this machine has 2 cores.
    concurrency=2
    ;;
  integration)
    mapfile -t files < <(find test -name '*.integration.test.ts' | sort)
    # One file at a time: the pipeline tests each start a worker and a gateway.
    concurrency=1
    ;;
  *)
    echo "usage: bash scripts/test-tier.sh unit|integration [node --test options]" >&2
    exit 2
    ;;
esac
t0=$(date +%s)
node --import tsx --test --test-concurrency="$concurrency" --test-reporter=spec "$@" "${files[@]}"
echo "==> $tier tier: ${#files[@]} files passed in $(($(date +%s) - t0))s"

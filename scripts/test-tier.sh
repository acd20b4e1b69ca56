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
reporters=(--test-reporter=spec --test-reporter-destination=stdout)
if [[ $concurrency -gt 1 ]]; then
  # Slowest files first (by the last full run's durations), so the run does not end with one long file
  # running alone while the other core idles.
  durations="${XDG_CACHE_HOME:-$HOME/.cache}/ferry/test-durations-$tier.json"
  mkdir -p "$(dirname "$durations")"
  mapfile -t files < <(node scripts/lib/slowestFirst.mjs "$durations" "${files[@]}")
  [[ $# -eq 0 ]] && reporters+=(--test-reporter=./scripts/lib/fileDurations.mjs --test-reporter-destination="$durations.new")
fi
t0=$(date +%s)
node --import tsx --test --test-concurrency="$concurrency" "${reporters[@]}" "$@" "${files[@]}"
if [[ -f "${durations:-}.new" ]]; then mv "$durations.new" "$durations"; fi
echo "==> $tier tier: ${#files[@]} files passed in $(($(date +%s) - t0))s"

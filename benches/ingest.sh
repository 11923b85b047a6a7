#!/usr/bin/env bash
# The ingest benchmark of BENCHMARKS.md: wrk POSTs one fixed body of 100 events (benches/ingest.lua,
# /tmp/batch.json from `examples/ingest_bench payload`) to a fresh embedded store, twice for 15 s.
#   bash benches/ingest.sh BIN CONFIG [DATA_DIR]     e.g. CONFIG = config.toml or benches/alerts.toml
set -euo pipefail
BIN=$1; CONFIG=$2; DIR=${3:-/tmp/logboard-ingest-bench}
rm -rf "$DIR"
export LOGBOARD__SERVER__LISTEN=127.0.0.1:18080 LOGBOARD_ADMIN_PASSWORD=bench-password RUST_LOG=error \
       LOGBOARD__LIMITS__KEY_BYTES_PER_SEC=1073741824 LOGBOARD__LIMITS__KEY_BURST_BYTES=1073741824 \
       LOGBOARD__LIMITS__IP_REQUESTS_PER_SEC=0 LOGBOARD__STORAGE__DATA_DIR="$DIR" \
       LOGBOARD__MONITOR__CANARY_INTERVAL_SECS=0 LOGBOARD__RETENTION__MIN_FREE_BYTES=0
cd "$(dirname "${BASH_SOURCE[0]}")/.."
"$BIN" serve --config "$CONFIG" >/dev/null & PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
sleep 1.5
for _ in 1 2; do
    wrk -t2 -c32 -d15s --latency -s benches/ingest.lua http://127.0.0.1:18080/api/v1/events | grep -E "Requests/sec|50%|99%"
done

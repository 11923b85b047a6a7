#!/usr/bin/env bash
# The protocol benchmark of BENCHMARKS.md ("Sentry and OpenTelemetry"): one release server on a
# fresh embedded store; wrk sends, for 15 s each, our own 100-event batch to /api/v1/events, one
# Sentry error per envelope, 100 Sentry Logs per envelope, and 100 OTLP/protobuf log records to
# /v1/logs (bodies from `examples/ingest_bench`), so that the four are compared in one run; and our
# endpoint with the very events each door decodes to (`payload-like-logs`, `payload-like-otlp`).
#   bash benches/protocols.sh BIN BENCH_EXAMPLE [DATA_DIR]
#   e.g. bash benches/protocols.sh target/release/logboard target/release/examples/ingest_bench
set -euo pipefail
BIN=$1; EXAMPLE=$2; DIR=${3:-/tmp/logboard-protocols-bench}
rm -rf "$DIR"
export LOGBOARD__SERVER__LISTEN=127.0.0.1:18081 LOGBOARD_ADMIN_PASSWORD=bench-password RUST_LOG=error \
       LOGBOARD__LIMITS__KEY_BYTES_PER_SEC=1073741824 LOGBOARD__LIMITS__KEY_BURST_BYTES=1073741824 \
       LOGBOARD__LIMITS__IP_REQUESTS_PER_SEC=0 LOGBOARD__STORAGE__DATA_DIR="$DIR" \
       LOGBOARD__MONITOR__CANARY_INTERVAL_SECS=0 LOGBOARD__RETENTION__MIN_FREE_BYTES=0
cd "$(dirname "${BASH_SOURCE[0]}")/.."
"$EXAMPLE" payload > /tmp/bench-ours.json
"$EXAMPLE" payload-like-logs > /tmp/bench-ours-like-logs.json
"$EXAMPLE" payload-like-otlp > /tmp/bench-ours-like-otlp.json
"$EXAMPLE" sentry-error > /tmp/bench-sentry-error.envelope
"$EXAMPLE" sentry-logs > /tmp/bench-sentry-logs.envelope
"$EXAMPLE" otlp > /tmp/bench-otlp.pb
"$BIN" serve --config config.toml >/dev/null & PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
sleep 1.5
run() { # NAME EVENTS_PER_REQUEST PATH BODY CTYPE AUTH_NAME AUTH_VALUE
    local rps
    rps=$(BODY=$4 CTYPE=$5 AUTH_NAME=$6 AUTH_VALUE=$7 wrk -t2 -c32 -d15s -s benches/protocols.lua \
          "http://127.0.0.1:18081$3" | tee /tmp/bench-"$1".txt | awk '/Requests\/sec/ {print $2}')
    grep -E "Non-2xx" /tmp/bench-"$1".txt || true
    printf '%-14s %10s req/s %10.0f events/s\n' "$1" "$rps" "$(echo "$rps * $2" | bc -l)"
}
SENTRY_AUTH="Sentry sentry_key=demo_sentry_key, sentry_version=7"
run ours 100 /api/v1/events /tmp/bench-ours.json application/json X-Logboard-Key demo-ingest-key
run sentry-error 1 /api/1/envelope/ /tmp/bench-sentry-error.envelope application/x-sentry-envelope X-Sentry-Auth "$SENTRY_AUTH"
run ours-like-logs 100 /api/v1/events /tmp/bench-ours-like-logs.json application/json X-Logboard-Key demo-ingest-key
run sentry-logs 100 /api/1/envelope/ /tmp/bench-sentry-logs.envelope application/x-sentry-envelope X-Sentry-Auth "$SENTRY_AUTH"
run ours-like-otlp 100 /api/v1/events /tmp/bench-ours-like-otlp.json application/json X-Logboard-Key demo-ingest-key
run otlp 100 /v1/logs /tmp/bench-otlp.pb application/x-protobuf Authorization "Bearer demo-ingest-key"
run ours-again 100 /api/v1/events /tmp/bench-ours.json application/json X-Logboard-Key demo-ingest-key

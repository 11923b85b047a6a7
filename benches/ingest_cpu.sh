#!/usr/bin/env bash
# Ingest CPU per event (BENCHMARKS.md, "Ingest CPU per event"): the server's CPU time (utime +
# stime of /proc/PID/stat, all threads) over the events it acknowledged, while wrk POSTs one fixed
# batch of 100 events to /api/v1/events for DURATION seconds. Three bodies from
# `examples/ingest_bench`: `payload` (the generator's 10 %-error batch), `payload-errors` (100
# errors with a stack: fingerprints and issue counts) and `payload-like-logs` (100 logs with the
# attributes Sentry Logs carry in `extra`). Each BIN gets a fresh store; give several to compare
# builds in one run (the box's other load weighs on all of them alike: the ratio is what counts).
#   bash benches/ingest_cpu.sh BIN [BIN...]
#   e.g. EXAMPLE=target/release/examples/ingest_bench bash benches/ingest_cpu.sh /tmp/logboard-before target/release/logboard
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EXAMPLE=${EXAMPLE:-${CARGO_TARGET_DIR:-target}/release/examples/ingest_bench}
DURATION=${DURATION:-10}; ROUNDS=${ROUNDS:-1}
DIR=/tmp/logboard-ingest-cpu
"$EXAMPLE" payload > /tmp/ingest-cpu-payload.json
"$EXAMPLE" payload-errors > /tmp/ingest-cpu-errors.json
"$EXAMPLE" payload-like-logs > /tmp/ingest-cpu-like-logs.json
export LOGBOARD__SERVER__LISTEN=127.0.0.1:18082 LOGBOARD_ADMIN_PASSWORD=bench-password RUST_LOG=error \
       LOGBOARD__LIMITS__KEY_BYTES_PER_SEC=1073741824 LOGBOARD__LIMITS__KEY_BURST_BYTES=1073741824 \
       LOGBOARD__LIMITS__IP_REQUESTS_PER_SEC=0 LOGBOARD__STORAGE__DATA_DIR="$DIR" \
       LOGBOARD__MONITOR__CANARY_INTERVAL_SECS=0 LOGBOARD__RETENTION__MIN_FREE_BYTES=0
TICKS=$(getconf CLK_TCK)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null || true' EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, in clock ticks

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s %-10s %8s %10s %12s\n' binary body events req/s "µs CPU/event"
for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    rm -rf "$DIR"
    "$bin" serve --config config.toml >/dev/null & PID=$!
    sleep 1.5
    for body in payload errors like-logs; do
        before=$(cpu_ticks "$PID")
        out=$(BODY=/tmp/ingest-cpu-$body.json wrk -t2 -c16 -d"${DURATION}s" -s benches/ingest.lua \
              http://127.0.0.1:18082/api/v1/events)
        sleep 1 # what the last requests left to the writer
        after=$(cpu_ticks "$PID")
        requests=$(awk '/requests in/ {print $1}' <<<"$out")
        refused=$(awk '/Non-2xx/ {print $NF}' <<<"$out"); refused=${refused:-0}
        rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
        events=$(( (requests - refused) * 100 ))
        printf '%-28s %-10s %8d %10s %12.2f\n' "$(basename "$bin")#$round" "$body" "$events" "$rps" \
            "$(echo "($after - $before) / $TICKS * 1000000 / $events" | bc -l)"
    done
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

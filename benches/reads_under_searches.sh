#!/usr/bin/env bash
# usage: benches/reads_under_searches.sh BINARY [EVENTS]  (from the repository root; CONFIG=path for another config)
# /readyz and home-page latency, alone and while 6 clients run full-scan searches (a `q` the index cannot narrow, that
# matches nothing over a week) in a loop for 40 s. Events are spread over the last 23 hours.
set -euo pipefail
BIN=$1; EVENTS=${2:-56000}; PORT=18090; BASE=http://127.0.0.1:$PORT
DATA=$(mktemp -d); JAR=$(mktemp)
export LOGBOARD__SERVER__LISTEN=127.0.0.1:$PORT LOGBOARD_ADMIN_PASSWORD=bench-password RUST_LOG=error \
  LOGBOARD__LIMITS__KEY_BYTES_PER_SEC=1073741824 LOGBOARD__LIMITS__KEY_BURST_BYTES=1073741824 \
  LOGBOARD__LIMITS__IP_REQUESTS_PER_SEC=0 LOGBOARD__STORAGE__DATA_DIR=$DATA
"$BIN" serve --config "${CONFIG:-config.toml}" > /dev/null 2>&1 & SERVER=$!
trap 'kill $SERVER; rm -rf $DATA $JAR' EXIT
for i in $(seq 50); do curl -sf $BASE/healthz > /dev/null && break; sleep 0.2; done
# events spread over the last 23 hours (the home page counts them too), 1000 per request
python3 - "$EVENTS" <<'PY' | while read -r f; do curl -sf -o /dev/null -H 'X-Logboard-Key: demo-ingest-key' -H 'Content-Type: application/json' --data-binary @"$f" $BASE/api/v1/events; rm "$f"; done
import json, sys, time, tempfile
n = int(sys.argv[1]); now = int(time.time() * 1000); span = 23 * 3600 * 1000
for start in range(0, n, 1000):
    events = [{"message": f"GET /checkout/{i} answered 200 after {i % 997} ms for customer {i * 7919 % 100000}",
               "level": "info", "timestamp": now - span + i * span // n} for i in range(start, min(n, start + 1000))]
    f = tempfile.NamedTemporaryFile("w", delete=False, suffix=".json"); json.dump({"env": "production", "events": events}, f); f.close()
    print(f.name)
PY
curl -sf -c $JAR -o /dev/null -d 'username=admin&password=bench-password&next=/' $BASE/login
FROM=$(date -u -d '-7 days' +%Y-%m-%dT%H:%M:%SZ); TO=$(date -u -d '+1 min' +%Y-%m-%dT%H:%M:%SZ)
SEARCH="$BASE/api/v1/events?project=demo&env=production&q=-level:%3E%3Ddebug&from=$FROM&to=$TO"
echo "alone: search $(curl -s -b $JAR -o /dev/null -w '%{http_code} %{time_total}s' "$SEARCH"), readyz $(curl -s -o /dev/null -w '%{http_code} %{time_total}s' $BASE/readyz), home $(curl -s -b $JAR -o /dev/null -w '%{http_code} %{time_total}s' $BASE/)"
END=$((SECONDS + 40))
PIDS=()
for c in 1 2 3 4 5 6; do (while [ $SECONDS -lt $END ]; do curl -s -b $JAR -o /dev/null -w '%{http_code}\n' "$SEARCH"; done > $DATA/search-$c.log) & PIDS+=($!); done
sleep 1
for i in $(seq 8); do
  [ $SECONDS -lt $((END - 10)) ] || break
  r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' $BASE/readyz)
  h=$(curl -s -b $JAR -o /dev/null -w '%{http_code} %{time_total}' $BASE/)
  echo "readyz $r s   home $h s"; sleep 0.5
done
wait "${PIDS[@]}"
echo "search answers during the run: $(cat $DATA/search-*.log | sort | uniq -c | tr '\n' ' ')"

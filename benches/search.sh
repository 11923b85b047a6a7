#!/usr/bin/env bash
# usage: benches/search.sh BINARY DATA_DIR  (from the repository root)
# Server time of the read paths over a data set written by examples/generate (project `shop`):
# each request five times, the median and the slowest printed. From and to cover the last
# 7 days unless said. See BENCHMARKS.md, "Search at 10M events".
set -euo pipefail
BIN=$1; DATA=$2; PORT=18091; BASE=http://127.0.0.1:$PORT
export LOGBOARD__STORAGE__DATA_DIR=$DATA LOGBOARD_ADMIN_PASSWORD=bench-password RUST_LOG=error
"$BIN" serve --config benches/shop.toml > /dev/null 2>&1 & SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 100); do curl -sf $BASE/healthz > /dev/null && break; sleep 0.2; done
AUTH='Authorization: Bearer bench-token-0123456789abcdef'
JAR=$(mktemp); curl -sf -c "$JAR" -o /dev/null -d 'username=admin&password=bench-password&next=/' $BASE/login
RANGE="project=shop&env=production&from=now-7d&to=now"
measure() { # label, path (cookie and bearer both sent)
  local times=() code
  for _ in 1 2 3 4 5; do
    read -r code t < <(curl -s -b "$JAR" -H "$AUTH" -o /dev/null -w '%{http_code} %{time_total}\n' "$BASE$2")
    times+=("$t")
  done
  printf '%-58s %s  median %4.0f ms  max %4.0f ms\n' "$1" "$code" \
    "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p | awk '{print $1*1000}')" \
    "$(printf '%s\n' "${times[@]}" | sort -n | tail -1 | awk '{print $1*1000}')"
}
count() { curl -s -H "$AUTH" "$BASE/api/v1/histogram?$RANGE&q=$1" | python3 -c 'import json,sys; h=json.load(sys.stdin); print(sum(sum(b["counts"].values()) if isinstance(b["counts"],dict) else sum(b["counts"]) for b in h["buckets"]))' 2>/dev/null || echo "?"; }
echo "events in range (histogram total, no query): $(count '')"
measure "logs page, no query (page + chart)"            "/logs?$RANGE"
measure "API page, no query"                             "/api/v1/events?$RANGE"
measure "histogram, no query"                            "/api/v1/histogram?$RANGE"
measure "home page (24 h counts per env)"                "/"
for q in refund ord-4242 user:u-31337 extra.region:sa-east-1 xylophone 'refund%20user:u-31337' 'level:error%20timeout'; do
  echo "q=$q: $(count "$q") matches"
  measure "  API page, q=$q"                             "/api/v1/events?$RANGE&q=$q"
  measure "  logs page, q=$q"                            "/logs?$RANGE&q=$q"
  measure "  histogram, q=$q"                            "/api/v1/histogram?$RANGE&q=$q"
done

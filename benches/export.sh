#!/usr/bin/env bash
# usage: benches/export.sh BINARY DATA_DIR [FROM]  (from the repository root)
# Streams /api/v1/events.csv of project `shop`/production from FROM (default now-37h, about a
# million events of examples/generate's 10M) to now: time to the first byte, total time, rows,
# and the server's RSS sampled every 0.5 s during the download. See BENCHMARKS.md.
set -euo pipefail
BIN=$1; DATA=$2; FROM=${3:-now-37h}; PORT=18091; BASE=http://127.0.0.1:$PORT
export LOGBOARD__STORAGE__DATA_DIR=$DATA LOGBOARD_ADMIN_PASSWORD=bench-password RUST_LOG=error
"$BIN" serve --config benches/shop.toml > /dev/null 2>&1 & SERVER=$!
trap 'kill $SERVER' EXIT
for _ in $(seq 100); do curl -sf $BASE/healthz > /dev/null && break; sleep 0.2; done
OUT=$(mktemp)
echo "RSS before: $(grep VmRSS /proc/$SERVER/status | awk '{print $2 / 1024 " MB"}')"
curl -s -H 'Authorization: Bearer bench-token-0123456789abcdef' -o "$OUT" \
  -w 'first byte %{time_starttransfer} s, total %{time_total} s, %{size_download} bytes\n' \
  "$BASE/api/v1/events.csv?project=shop&env=production&from=$FROM&to=now" & CURL=$!
PEAK=0
while kill -0 $CURL 2> /dev/null; do
  RSS=$(grep VmRSS /proc/$SERVER/status | awk '{print int($2 / 1024)}'); [ "$RSS" -gt "$PEAK" ] && PEAK=$RSS
  sleep 0.5
done
wait $CURL
echo "rows (without the header): $(($(python3 -c "import csv,sys; print(sum(1 for _ in csv.reader(open(sys.argv[1], newline=''))))" "$OUT") - 1)), RSS peak during: $PEAK MB"
rm -f "$OUT"

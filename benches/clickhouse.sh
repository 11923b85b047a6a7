#!/usr/bin/env bash
# usage: [REPEATS=5] [QUERY_TIME_LIMIT_MS=N] [FACTS=1] benches/clickhouse.sh BINARY DATA_DIR NDJSON [RUNS]
#        (from the repository root; RUNS=0 with FACTS=1 prints only the facts)
#
# The side-by-side benchmark of issue 23: every query class over the last 7 days of
# shop/production, on logboard (the embedded store in DATA_DIR, written by examples/generate)
# and on ClickHouse holding the same events (NDJSON, the generator's fourth argument) in a
# MergeTree table with typed columns. Prints one table per run (RUNS, default 2): chart and
# first page, median of 5, on both, the ratio, and both counts. See BENCHMARKS.md,
# "Query classes at 10M events, side by side with ClickHouse (issue 23)".
#
# ClickHouse (Debian's clickhouse-server, 18.16) runs as the current user on private ports with
# its data in $CH_DIR (default /tmp/clickhouse-bench), and is stopped at the end. The table is
# loaded once: a rerun whose table already holds the NDJSON's line count skips the load.
set -euo pipefail
BIN=$1; DATA=$2; NDJSON=$3; RUNS=${4:-2}
CH_DIR=${CH_DIR:-/tmp/clickhouse-bench}
CH_HTTP=${CH_HTTP:-18923}; CH_TCP=${CH_TCP:-18900}
LB_PORT=${LB_PORT:-18097}

if ! command -v clickhouse-server > /dev/null || ! command -v clickhouse-client > /dev/null; then
  apt-get update && apt-get install -y clickhouse-server clickhouse-client
fi

# A private server: its own config, users, data, logs and ports (nothing of /etc or /var/lib).
mkdir -p "$CH_DIR"/{data,tmp,user_files,format_schemas,log}
cp /etc/clickhouse-server/users.xml "$CH_DIR/users.xml"
cat > "$CH_DIR/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$CH_DIR/log/server.log</log><errorlog>$CH_DIR/log/error.log</errorlog>
    <size>100M</size><count>2</count></logger>
  <http_port>$CH_HTTP</http_port>
  <tcp_port>$CH_TCP</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$CH_DIR/data/</path>
  <tmp_path>$CH_DIR/tmp/</tmp_path>
  <user_files_path>$CH_DIR/user_files/</user_files_path>
  <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
  <users_config>$CH_DIR/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>1073741824</mark_cache_size>
  <max_concurrent_queries>20</max_concurrent_queries>
</yandex>
EOF
clickhouse-server --config-file="$CH_DIR/config.xml" > "$CH_DIR/log/stdout.log" 2>&1 & CH_PID=$!

# logboard on the generator's data, as benches/search.sh starts it (own port).
export LOGBOARD__STORAGE__DATA_DIR=$DATA LOGBOARD__SERVER__LISTEN=127.0.0.1:$LB_PORT
export LOGBOARD_ADMIN_PASSWORD=bench-password RUST_LOG=error
# QUERY_TIME_LIMIT_MS raises logboard's 10 s limit (benches/shop.toml), to see what a 422 hides;
# REPEATS (default 5) is how many times each request is timed.
[ -n "${QUERY_TIME_LIMIT_MS:-}" ] && export LOGBOARD__STORAGE__QUERY_TIME_LIMIT_MS=$QUERY_TIME_LIMIT_MS
"$BIN" serve --config benches/shop.toml > /dev/null 2>&1 & LB_PID=$!
trap 'kill $LB_PID $CH_PID 2> /dev/null; wait $LB_PID $CH_PID 2> /dev/null || true' EXIT

for _ in $(seq 150); do
  curl -sf "http://127.0.0.1:$LB_PORT/healthz" > /dev/null && curl -sf "http://127.0.0.1:$CH_HTTP/ping" > /dev/null && break
  sleep 0.2
done
curl -sf "http://127.0.0.1:$LB_PORT/healthz" > /dev/null || { echo "logboard did not start" >&2; exit 1; }
curl -sf "http://127.0.0.1:$CH_HTTP/ping" > /dev/null || { echo "clickhouse did not start: see $CH_DIR/log" >&2; exit 1; }

python3 benches/clickhouse.py --logboard "http://127.0.0.1:$LB_PORT" --clickhouse "http://127.0.0.1:$CH_HTTP" \
  --ndjson "$NDJSON" --runs "$RUNS" ${FACTS:+--facts}
echo "ClickHouse data: $CH_DIR/data ($(du -sh "$CH_DIR/data" | cut -f1)); logboard data: $DATA ($(du -sh "$DATA" | cut -f1))"

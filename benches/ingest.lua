-- wrk script for the ingest benchmark (BENCHMARKS.md, "Writer and ingest"):
--   wrk -t2 -c32 -d20s --latency -s benches/ingest.lua http://127.0.0.1:8080/api/v1/events
-- The body is the file named by $BODY (default /tmp/batch.json), made with
--   cargo run --release --example ingest_bench -- payload > /tmp/batch.json
local path = os.getenv("BODY") or "/tmp/batch.json"
local file = assert(io.open(path, "r"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Logboard-Key"] = os.getenv("KEY") or "demo-ingest-key"
-- wrk counts answers other than 2xx/3xx itself ("Non-2xx or 3xx responses").

-- wrk script for the protocol benchmark (BENCHMARKS.md, "Sentry and OpenTelemetry"): POSTs the
-- file $BODY with Content-Type $CTYPE and the header $AUTH_NAME: $AUTH_VALUE (benches/protocols.sh).
local file = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = os.getenv("CTYPE")
wrk.headers[os.getenv("AUTH_NAME")] = os.getenv("AUTH_VALUE")

-- wrk script for the protocol benchmark (BENCHMARKS.md, "Sentry and OpenTelemetry"): POSTs the
-- file $BODY with Content-Type $CTYPE and the header $AUTH_NAME: $AUTH_VALUE (benches/protocols.sh).
-- The bodies' time marks (examples/ingest_bench.rs) become the current second, as a client sends
-- the time of each event; every body goes through the same substitution.
local file = assert(io.open(os.getenv("BODY"), "rb"))
local template = file:read("*a")
file:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CTYPE")
wrk.headers[os.getenv("AUTH_NAME")] = os.getenv("AUTH_VALUE")

-- n as eight bytes, little-endian (a protobuf fixed64).
local function le64(n)
    local bytes = {}
    for i = 1, 8 do
        local b = n % 256
        bytes[i] = string.char(b)
        n = (n - b) / 256
    end
    return table.concat(bytes)
end

local body, second = nil, -1
request = function()
    local now = os.time()
    if now ~= second then
        second = now
        local nanos = le64(now * 1e9):gsub("%%", "%%%%")
        body = template:gsub("1111111111%.5", now .. ".5"):gsub("ABCDEFGH", nanos)
    end
    return wrk.format(nil, nil, nil, body)
end

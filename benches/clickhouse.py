#!/usr/bin/env python3
"""The query part of benches/clickhouse.sh (issue 23): loads the NDJSON into ClickHouse once, then
times every query class on logboard and on ClickHouse, both over HTTP, and prints one table per run.

Both servers must be running (the shell script starts them). Times are the client's wall time of a
whole request over loopback (like curl's time_total in benches/search.sh), median of 5.
"""

import argparse
import calendar
import json
import os
import re
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

try:
    import orjson

    loads = orjson.loads
except ImportError:  # pragma: no cover - the stdlib parser is only slower
    loads = json.loads

TOKEN = "bench-token-0123456789abcdef"  # benches/shop.toml
PROJECT, ENV = "shop", "production"
PAGE = 50
REPEATS = int(os.environ.get("REPEATS", "5"))
DAY_MS = 86_400_000
LEVELS = ["debug", "info", "warn", "error", "fatal"]

# The table: one typed column per field the generator writes (examples/generate.rs). Strings a
# generated event may lack are '' (logboard's `has:` treats an empty value as absent too);
# numbers it may lack are Nullable. ORDER BY (project, env, ts), as the issue asks.
TABLE = "events"
COLUMNS = [
    ("project", "String"),
    ("env", "String"),
    ("ts", "Int64"),  # ms since the epoch (18.16 has no DateTime64)
    ("id", "String"),  # the ULID: its text sorts like its bytes
    ("received_at", "Int64"),
    ("level", "Enum8('debug' = 0, 'info' = 1, 'warn' = 2, 'error' = 3, 'fatal' = 4)"),
    ("message", "String"),
    ("type", "String"),
    ("code", "String"),
    ("http_method", "String"),
    ("http_status", "Nullable(UInt16)"),
    ("url", "String"),
    ("location", "String"),
    ("user", "String"),  # the user's id when `user` is an object, else the string (search.md)
    ("user_plan", "String"),
    ("release", "String"),
    ("fingerprint", "String"),
    ("stack", "String"),
    ("extra_service", "String"),
    ("extra_region", "String"),
    ("extra_request_id", "String"),
    ("extra_duration_ms", "Nullable(Int64)"),
]

# The query classes of issue 23: (logboard's q, the ClickHouse condition with logboard's meaning).
# search.md: a bare word is a case-insensitive substring of `message` only; `field:value` on a
# string is case-insensitive equality, `*` a wildcard over the whole value; a comparison never
# matches an absent field; `has:` is "present and not empty".
CLASSES = [
    ("http.status:>=500", "http_status >= 500"),
    ("-level:info", "level != 'info'"),
    ("url:*checkout*", "lower(url) LIKE '%checkout%'"),
    ("url:*payments*", "lower(url) LIKE '%payments%'"),
    ("has:extra.duration_ms", "isNotNull(extra_duration_ms)"),
    ("extra.duration_ms:>1990", "extra_duration_ms > 1990"),
    ("timeout", "positionCaseInsensitive(message, 'timeout') > 0"),
    ("payments", "positionCaseInsensitive(message, 'payments') > 0"),
    ("level:error", "level = 'error'"),
    ("level:>=warn", "toInt8(level) >= 2"),
    ("extra.service:payments", "lower(extra_service) = 'payments'"),
    ("level:error timeout", "level = 'error' AND positionCaseInsensitive(message, 'timeout') > 0"),
    ("", "1"),
    # What the search index narrows (a user's value; a word in no message), and main() adds an
    # id found once in the messages: the rare words people paste.
    ("user:u-10519", "lower(user) = 'u-10519'"),
    ("nothing-matches-zqxj", "positionCaseInsensitive(message, 'nothing-matches-zqxj') > 0"),
]


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def rare_id(path):
    """A UUID of a message near the NDJSON's end (within the 7 days): a word found once."""
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - (1 << 20)))
        for line in reversed(f.read().splitlines()[1:]):
            e = loads(line)
            if e["env"] == ENV and (found := UUID.search(e["message"])):
                return found.group(0)
    return None


def tsv(value):
    """A TabSeparated field."""
    if value is None:
        return "\\N"
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


_DAYS = {}


def ms(rfc3339):
    """Epoch ms of `2026-11-22T23:26:22.777Z` (the events' format: UTC, milliseconds; the day is
    parsed once, the rest by slicing — strptime would double the load time)."""
    day = _DAYS.get(rfc3339[:10])
    if day is None:
        day = _DAYS[rfc3339[:10]] = calendar.timegm(time.strptime(rfc3339[:10], "%Y-%m-%d")) * 1000
    fraction = int(rfc3339[20:23]) if rfc3339[19:20] == "." else 0
    return day + ((int(rfc3339[11:13]) * 60 + int(rfc3339[14:16])) * 60 + int(rfc3339[17:19])) * 1000 + fraction


def row(line):
    e = loads(line)
    http, extra, user = e.get("http") or {}, e.get("extra") or {}, e.get("user")
    user_id, plan = (user.get("id"), user.get("plan")) if isinstance(user, dict) else (user, None)
    values = [
        e["project"], e["env"], ms(e["timestamp"]), e["id"], ms(e["received_at"]), e["level"], e["message"],
        e.get("type"), e.get("code"), http.get("method"), http.get("status"), e.get("url"), e.get("location"),
        user_id, plan, e.get("release"), e.get("fingerprint"), e.get("stack"),
        extra.get("service"), extra.get("region"), extra.get("request_id"), extra.get("duration_ms"),
    ]
    nullable = {10, 21}  # http_status, extra_duration_ms
    return "\t".join(tsv(v) if (v is not None or i in nullable) else "" for i, v in enumerate(values)) + "\n"


class ClickHouse:
    def __init__(self, base):
        self.base = base

    def query(self, sql, data=None):
        url = self.base + "/?" + urllib.parse.urlencode({"query": sql}) if data is not None else self.base + "/"
        body = data if data is not None else sql.encode()
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=3600) as r:
            return r.read().decode()

    def load(self, ndjson):
        lines, first_id, last_id = survey(ndjson)
        self.query(
            f"CREATE TABLE IF NOT EXISTS {TABLE} ({', '.join(f'{n} {t}' for n, t in COLUMNS)}) "
            "ENGINE = MergeTree() ORDER BY (project, env, ts)"
        )
        have = int(self.query(f"SELECT count() FROM {TABLE}"))
        ends = int(self.query(f"SELECT count() FROM {TABLE} WHERE id IN ('{first_id}', '{last_id}')"))
        if have == lines and ends == 2:
            print(f"ClickHouse: {TABLE} already holds the NDJSON ({have:,} rows, its first and last ids): "
                  "not loaded again")
            return
        print(f"ClickHouse: {TABLE} holds {have:,} rows, the NDJSON {lines:,}: loading it again", flush=True)
        self.query(f"TRUNCATE TABLE {TABLE}")
        started = time.monotonic()
        insert = f"INSERT INTO {TABLE} FORMAT TabSeparated"
        # One INSERT in flight while the next chunk is converted (the server parses in parallel).
        with open(ndjson, "rb") as f, ThreadPoolExecutor(max_workers=1) as inserter:
            pending, done = None, 0
            while chunk := f.readlines(128 << 20):  # ~250,000 events per INSERT
                body = "".join(row(line) for line in chunk).encode()
                if pending:
                    pending.result()
                pending, done = inserter.submit(self.query, insert, body), done + len(chunk)
                print(f"  {done:,} rows converted, {time.monotonic() - started:.0f} s", flush=True)
            if pending:
                pending.result()
        self.query(f"OPTIMIZE TABLE {TABLE} FINAL")
        print(f"ClickHouse: loaded {lines:,} rows in {time.monotonic() - started:.0f} s (with OPTIMIZE FINAL)")


def survey(path):
    """The NDJSON's line count and the ids of its first and last events."""
    with open(path, "rb") as f:
        first = loads(f.readline())["id"]
        f.seek(max(0, os.path.getsize(path) - (1 << 16)))
        last = loads(f.read().splitlines()[-1])["id"]
        f.seek(0)
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b"")), first, last


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def median_of(fn):
    """The median time of REPEATS calls and the last call's result."""
    times, result = [], None
    for _ in range(REPEATS):
        t, result = timed(fn)
        times.append(t)
    return statistics.median(times), result


def logboard_get(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, None


def histogram_counts(answer):
    """{(bucket_start_ms, level): n} of a logboard histogram answer, zeros left out."""
    out = {}
    for bucket in answer["buckets"]:
        start = ms(bucket["start"])
        for level, n in bucket["counts"].items():
            if n:
                out[(start, level)] = n
    return out


def run(args, ch, from_ms, to_ms, interval_ms):
    where = f"project = '{PROJECT}' AND env = '{ENV}' AND ts >= {from_ms} AND ts <= {to_ms}"
    rows, mismatches = [], []
    load_before = os.getloadavg()
    for q, condition in CLASSES:
        params = {"project": PROJECT, "env": ENV, "from": from_ms, "to": to_ms, "q": q}
        lb_chart_ms, (chart_code, chart) = median_of(lambda: logboard_get(args.logboard, "/api/v1/histogram", params))
        lb_page_ms, (page_code, page) = median_of(
            lambda: logboard_get(args.logboard, "/api/v1/events", {**params, "limit": PAGE})
        )
        chart_sql = (
            f"SELECT intDiv(ts, {interval_ms}) * {interval_ms} AS bucket, level, count() AS n FROM {TABLE} "
            f"WHERE {where} AND ({condition}) GROUP BY bucket, level FORMAT TabSeparated"
        )
        page_sql = (
            f"SELECT * FROM {TABLE} WHERE {where} AND ({condition}) "
            f"ORDER BY ts DESC, id DESC LIMIT {PAGE} FORMAT JSONEachRow"
        )
        ch_chart_ms, ch_chart = median_of(lambda: ch.query(chart_sql))
        ch_page_ms, ch_page = median_of(lambda: ch.query(page_sql))

        ch_counts = {}
        for line in ch_chart.splitlines():
            bucket, level, n = line.split("\t")
            ch_counts[(int(bucket), level)] = int(n)
        ch_total = sum(ch_counts.values())
        ch_ids = [json.loads(line)["id"] for line in ch_page.splitlines()]
        lb_total = "—"
        if chart_code == 200:
            lb_counts = histogram_counts(chart)
            lb_total = sum(lb_counts.values())
            if lb_counts != ch_counts:
                mismatches.append(f"{q or '(none)'}: chart counts per bucket and level differ")
        if page_code == 200:
            lb_ids = [e["id"] for e in page["events"]]
            if lb_ids != ch_ids:
                mismatches.append(f"{q or '(none)'}: first page ids differ ({len(lb_ids)} vs {len(ch_ids)} rows)")

        def shown(t, code):
            return f"{t:,.0f}" if code == 200 else f"{code} after {t / 1000:.1f} s"

        def ratio(lb, code, chq):
            r = lb / chq
            shown = f"{r:,.0f}" if r >= 10 else f"{r:.2g}"  # 0.0019×, 3.4×, 41×
            return f"{shown}×" if code == 200 else f"≥ {shown}×"

        rows.append(
            (
                f"`{q}`" if q else "(no query)",
                shown(lb_chart_ms, chart_code),
                shown(lb_page_ms, page_code),
                f"{ch_chart_ms:,.0f}",
                f"{ch_page_ms:,.0f}",
                ratio(lb_chart_ms, chart_code, ch_chart_ms),
                ratio(lb_page_ms, page_code, ch_page_ms),
                f"{lb_total:,}" if isinstance(lb_total, int) else lb_total,
                f"{ch_total:,}",
            )
        )
        print(f"  done: {q or '(no query)'}", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    header = (
        "class", "logboard chart ms", "logboard page ms", "ClickHouse chart ms", "ClickHouse page ms",
        "chart ratio (lb ÷ CH)", "page ratio", "logboard count", "ClickHouse count",
    )
    print(f"\n| {' | '.join(header)} |\n|{'---|' * len(header)}")
    for r in rows:
        print(f"| {' | '.join(r)} |")
    print(f"\nload average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print("counts: " + ("chart counts (per bucket and level) and first-page ids agree on every class answered"
                        if not mismatches else "MISMATCH — " + "; ".join(mismatches)))


def facts(ch, from_ms, to_ms):
    """ClickHouse's view of the design questions: the share of 32-row blocks (rows of the range, both
    environments, in time order — about the store's `seq` order) holding a match of each class, and
    the first page asked as the newest 50 (ts, id) first, then their rows."""
    where = f"project = '{PROJECT}' AND env = '{ENV}' AND ts >= {from_ms} AND ts <= {to_ms}"
    print("\n| class | blocks of 32 with a match | ClickHouse page, ids first (ms) |\n|---|---|---|")
    for q, condition in CLASSES:
        blocks, hits = ch.query(
            f"SELECT count(), sum(hit) FROM (SELECT intDiv(rowNumberInAllBlocks(), 32) AS b, "
            f"max(env = '{ENV}' AND ({condition})) AS hit FROM (SELECT * FROM {TABLE} WHERE project = '{PROJECT}' "
            f"AND ts >= {from_ms} AND ts <= {to_ms} ORDER BY ts, id) GROUP BY b) FORMAT TabSeparated"
        ).split()
        page_sql = (
            f"SELECT * FROM {TABLE} WHERE {where} AND (ts, id) IN (SELECT ts, id FROM {TABLE} WHERE {where} "
            f"AND ({condition}) ORDER BY ts DESC, id DESC LIMIT {PAGE}) ORDER BY ts DESC, id DESC FORMAT JSONEachRow"
        )
        page_ms, _ = median_of(lambda: ch.query(page_sql))
        share = int(hits) / int(blocks)
        print(f"| {f'`{q}`' if q else '(no query)'} | {int(hits):,} of {int(blocks):,} ({share:.1%}) | {page_ms:,.0f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logboard", required=True)
    parser.add_argument("--clickhouse", required=True)
    parser.add_argument("--ndjson", required=True)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--facts", action="store_true", help="also the block shares and a two-step page")
    args = parser.parse_args()
    ch = ClickHouse(args.clickhouse)
    ch.load(args.ndjson)
    # One fixed range for both (and every run): the 7 days before the script started.
    to_ms = int(time.time() * 1000)
    from_ms = to_ms - 7 * DAY_MS
    code, probe = logboard_get(args.logboard, "/api/v1/histogram",
                               {"project": PROJECT, "env": ENV, "from": from_ms, "to": to_ms})
    if code != 200:
        sys.exit(f"logboard histogram answered {code}")
    interval_ms = probe["interval_ms"]
    stats = ch.query(
        f"SELECT sum(rows), count(), sum(data_compressed_bytes), sum(data_uncompressed_bytes) "
        f"FROM system.parts WHERE table = '{TABLE}' AND active FORMAT TabSeparated"
    ).split("\t")
    rows, parts = int(stats[0]), stats[1]
    in_range = ch.query(
        f"SELECT count() FROM {TABLE} WHERE project = '{PROJECT}' AND env = '{ENV}' "
        f"AND ts >= {from_ms} AND ts <= {to_ms}"
    ).strip()
    print(f"range: {PROJECT}/{ENV}, from {from_ms} to {to_ms} (7 days), {int(in_range):,} events; "
          f"chart buckets of {interval_ms // 60000} min")
    print(f"ClickHouse: {rows:,} rows in {parts} active parts, {int(stats[2]) / rows:.0f} bytes/event "
          f"compressed ({int(stats[3]) / rows:.0f} uncompressed)")
    if uuid := rare_id(args.ndjson):
        CLASSES.append((uuid, f"positionCaseInsensitive(message, '{uuid}') > 0"))
    for i in range(args.runs):
        print(f"\n### run {i + 1} of {args.runs}, started {time.strftime('%H:%M:%S', time.gmtime())} UTC")
        run(args, ch, from_ms, to_ms, interval_ms)
    if args.facts:
        facts(ch, from_ms, to_ms)


if __name__ == "__main__":
    main()

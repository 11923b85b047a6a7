#!/usr/bin/env python3
"""The shared-state benchmark of BENCHMARKS.md ("Shared state in DynamoDB"), against moto.

    python3 benches/state.py BIN [PART...]   e.g. BIN = target/release/logboard; PART: ingest,
                                             requests, issues (default: all three)

Starts moto's server (tests/fixtures/moto/serial_server.py, on .venv's Python) on a private port
and creates the table with `BIN create-state-table`, then, on the embedded event store:

1. ingest throughput: wrk posts the ingest benchmark's body (100 events, 10 % errors; /tmp/batch.json
   from `cargo run --release --example ingest_bench -- payload`) for 15 s to a logboard with
   `[state] backend = "local"` and to one with `"dynamodb"`, one after the other;
2. requests to the table per second at a paced 100 and 10,000 events/s (5 % errors over 5
   issues), from `logboard_state_requests_total` before and after 20 s of each;
3. the issues page with 1,000 issues: the task's first view (which reads every issue), then the
   page and `GET /api/v1/issues` 20 times each, the median and the slowest, and the API again
   while a second task counts errors at 100 events/s.
"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "demo-ingest-key"
PASSWORD = "bench-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception:
            time.sleep(0.2)
    sys.exit(f"{url} did not answer")


def env_for(data_dir, port, moto_url, backend):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGBOARD", "AWS_"))}
    env.update({
        "LOGBOARD__SERVER__LISTEN": f"127.0.0.1:{port}",
        "LOGBOARD_ADMIN_PASSWORD": PASSWORD,
        "RUST_LOG": "error",
        "LOGBOARD__LIMITS__KEY_BYTES_PER_SEC": "1073741824",
        "LOGBOARD__LIMITS__KEY_BURST_BYTES": "1073741824",
        "LOGBOARD__LIMITS__IP_REQUESTS_PER_SEC": "0",
        "LOGBOARD__STORAGE__DATA_DIR": data_dir,
        "LOGBOARD__MONITOR__CANARY_INTERVAL_SECS": "0",
        "LOGBOARD__RETENTION__MIN_FREE_BYTES": "0",
        "LOGBOARD__STATE__BACKEND": backend,
        "LOGBOARD__STATE__TABLE": "logboard-bench",
        "LOGBOARD__STATE__ENDPOINT_URL": moto_url,
        "LOGBOARD__STATE__REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    return env


class Logboard:
    def __init__(self, binary, moto_url, backend):
        self.binary, self.moto_url = binary, moto_url
        self.dir = tempfile.mkdtemp(prefix="logboard-state-bench-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = env_for(self.dir, self.port, moto_url, backend)
        config = os.path.join(ROOT, "config.toml")
        self.proc = subprocess.Popen([binary, "serve", "--config", config], env=env, stdout=subprocess.DEVNULL)
        wait_for(self.base + "/healthz")

    def metric(self, name):
        text = urllib.request.urlopen(self.base + "/metrics").read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def post(base, events):
    body = json.dumps({"env": "production", "events": events}).encode()
    request = urllib.request.Request(base + "/api/v1/events", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "X-Logboard-Key": KEY})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202, answer.status


def events(n, start):
    out = []
    for i in range(start, start + n):
        if i % 20 == 0:  # 5 % errors over 5 issues
            kind = f"BenchError{(i // 20) % 5}"
            out.append({"level": "error", "type": kind, "message": f"{kind}: it failed", "user": {"id": f"u{i % 50}"}})
        else:
            out.append({"level": "info", "message": f"GET /api/orders/{i} answered 200"})
    return out


def wrk(base):
    out = subprocess.run(["wrk", "-t2", "-c32", "-d15s", "-s", os.path.join(ROOT, "benches/ingest.lua"),
                          base + "/api/v1/events"], capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def paced(task, per_second, seconds=20):
    """Sends `per_second` events each second (batches of at most 100, from 4 threads)."""
    batch = min(100, per_second)
    batches_per_second = per_second // batch
    before = task.metric("logboard_state_requests_total")
    started = time.time()

    def sender(offset):
        sent = 0
        for second in range(seconds):
            for b in range(offset, batches_per_second, 4):
                post(task.base, events(batch, (second * batches_per_second + b) * batch))
                sent += 1
            time.sleep(max(0.0, started + second + 1 - time.time()))

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(min(4, batches_per_second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    time.sleep(2)  # the last flush
    sent = batch * batches_per_second * seconds
    return (task.metric("logboard_state_requests_total") - before) / elapsed, sent / elapsed


def logged_in(task):
    """An opener holding a dashboard session, as a browser would after logging in."""
    import http.cookiejar
    import urllib.parse
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = urllib.parse.urlencode({"username": "admin", "password": PASSWORD, "next": "/"}).encode()
    opener.open(urllib.request.Request(task.base + "/login", data=form, method="POST"), timeout=10)
    return opener


def timed(open_url, url, reads=20):
    timings = []
    for _ in range(reads):
        started = time.perf_counter()
        body = open_url(url).read()
        timings.append((time.perf_counter() - started) * 1000)
    return body, statistics.median(timings), max(timings)


def issues_page(task, n=1000):
    """The issues page with `n` issues in the table, read 20 times each way: the page as a logged-in
    user opens it, the API with the session, and the API with Basic credentials (which adds one
    argon2 password check per request, by design)."""
    for start in range(0, n, 100):
        post(task.base, [{"level": "error", "type": f"Distinct{i}", "message": f"Distinct{i}: broke"}
                         for i in range(start, start + 100)])
    posted = time.time()
    time.sleep(3)  # the flusher has seen the last batch
    deadline = time.time() + 900
    while task.metric("logboard_state_backlog") > 0:
        assert time.time() < deadline, "the backlog did not drain"
        time.sleep(0.5)
    print(f"1,000 new issues in the table {time.time() - posted:.0f} s after they were posted")
    import base64
    session = logged_in(task)
    page = "/issues?project=demo&env=production&from=now-1d"
    api = "/api/v1/issues?project=demo&env=production&from=now-1d"
    results = {}
    started = time.perf_counter()
    session.open(task.base + api, timeout=30).read()
    first_view = (time.perf_counter() - started) * 1000
    body, *results["page"] = timed(lambda url: session.open(url, timeout=30), task.base + page)
    assert body.count(b"Distinct") >= 200, "the page lists the first 200 issues"
    body, *results["api"] = timed(lambda url: session.open(url, timeout=30), task.base + api)
    listed = len(json.loads(body)["issues"])
    auth = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    basic = lambda url: urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": auth}), timeout=30)
    _, *results["api_basic"] = timed(basic, task.base + api)
    # Another task counts errors meanwhile (100 events/s, 5 % errors): each view catches up.
    other = Logboard(task.binary, task.moto_url, "dynamodb")
    try:
        sender = threading.Thread(target=paced, args=(other, 100, 15))
        sender.start()
        time.sleep(3)
        _, *results["api_busy"] = timed(lambda url: session.open(url, timeout=30), task.base + api)
        sender.join()
    finally:
        other.stop()
    return listed, first_view, results


def main():
    binary = os.path.abspath(sys.argv[1])
    parts = set(sys.argv[2:]) or {"ingest", "requests", "issues"}
    moto_port = free_port()
    moto_url = f"http://127.0.0.1:{moto_port}"
    # moto one request at a time, as the tests run it (tests/fixtures/moto/serial_server.py says why).
    moto = subprocess.Popen([os.path.join(ROOT, ".venv/bin/python"),
                             os.path.join(ROOT, "tests/fixtures/moto/serial_server.py"), "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(moto_url + "/moto-api/")
        created = subprocess.run([binary, "create-state-table", "--config", os.path.join(ROOT, "config.toml")],
                                 env=env_for("/tmp", 1, moto_url, "dynamodb"), capture_output=True, text=True)
        print(created.stdout.strip() or created.stderr.strip())

        for backend in ("local", "dynamodb", "local", "dynamodb") if "ingest" in parts else ():
            task = Logboard(binary, moto_url, backend)
            print(f"ingest, state {backend:8}: {wrk(task.base):8.0f} requests/s of 100 events")
            task.stop()

        for rate in (100, 10_000) if "requests" in parts else ():
            task = Logboard(binary, moto_url, "dynamodb")
            per_second, achieved = paced(task, rate)
            print(f"asked {rate:6} events/s, sent {achieved:7.0f}/s for 20 s: {per_second:.1f} table requests/s")
            task.stop()

        if "issues" not in parts:
            return
        task = Logboard(binary, moto_url, "dynamodb")
        try:
            listed, first_view, results = issues_page(task)
        finally:
            task.stop()
        print(f"1,000 issues in the table ({listed} listed); the task's first view (reads every issue): "
              f"{first_view:.0f} ms; then 20 reads each, median / slowest:")
        for name, what in (("page", "GET /issues, logged in"), ("api", "GET /api/v1/issues, logged in"),
                           ("api_basic", "GET /api/v1/issues, Basic credentials"),
                           ("api_busy", "the API, another task counting errors")):
            median, slowest = results[name]
            print(f"  {what:40} {median:5.0f} ms / {slowest:5.0f} ms")
    finally:
        moto.terminate()


if __name__ == "__main__":
    main()

//! A strict fake CloudWatch Logs: an HTTP/1.1 server on loopback speaking the AWS JSON 1.1
//! protocol (`X-Amz-Target: Logs_20140328.<Operation>`), written on raw TCP so it can do what a
//! framework would not let it: close a connection after storing a batch without answering.
//!
//! Unlike moto it enforces every PutLogEvents limit (10,000 events; 1,048,576 bytes counted as
//! UTF-8 + 26 per event; chronological order; a span of at most 24 h; non-empty messages; too
//! old (14 d) / too new (2 h) / past the group's retention reported in `rejectedLogEventsInfo`)
//! and injects faults on demand: throttling, 5xx, slow answers, dropped connections before or
//! after storing, partial rejections, a 404 right after a create, and a poisoned message.
//! Operations: CreateLogGroup, CreateLogStream, PutLogEvents, DescribeLogGroups,
//! FilterLogEvents (one page), PutRetentionPolicy.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const MAX_EVENTS: usize = 10_000;
pub const MAX_BYTES: usize = 1_048_576;
pub const EVENT_OVERHEAD: usize = 26;
pub const MAX_SPAN_MS: i64 = 24 * 3600 * 1000;
pub const MAX_AGE_MS: i64 = 14 * 24 * 3600 * 1000;
pub const MAX_FUTURE_MS: i64 = 2 * 3600 * 1000;

/// One thing to do instead of (or besides) answering the next PutLogEvents normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 400 ThrottlingException; nothing stored.
    Throttle,
    /// This HTTP status (500, 503, ...) with a service error; nothing stored.
    Status(u16),
    /// Store, then wait this long before answering (past the SDK's timeout: a duplicate).
    SlowAfterStore(Duration),
    /// Store, then close the connection without an answer (a duplicate).
    DropAfterStore,
    /// Close the connection without storing or answering.
    DropBeforeStore,
    /// Store all but these and answer 200 with them in `rejectedLogEventsInfo`.
    Reject { too_new_start: Option<usize>, too_old_end: Option<usize>, expired_end: Option<usize> },
    /// 400 ResourceNotFoundException even though the stream exists (a put right after a create).
    NotFound,
}

/// An event as the fake stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub stream: String,
    pub timestamp: i64,
    pub message: String,
}

/// One PutLogEvents call as it arrived, and how it was answered.
#[derive(Debug, Clone)]
pub struct PutCall {
    pub events: usize,
    pub bytes: usize,
    /// `None` = 200; else the error type, or "dropped".
    pub error: Option<String>,
}

#[derive(Default)]
struct Group {
    retention_days: Option<i64>,
    streams: BTreeMap<String, Vec<Stored>>,
}

#[derive(Default)]
struct State {
    groups: BTreeMap<String, Group>,
    faults: VecDeque<Fault>,
    /// Until then, every put gets this fault.
    window: Option<(Instant, Fault)>,
    /// Every put waits this long before it is handled.
    delay: Duration,
    /// A put holding a message containing this fails with InvalidParameterException.
    poison: Option<String>,
    /// Added to the fake's clock (to make accepted events too old or too new for it).
    clock_offset_ms: i64,
    puts: Vec<PutCall>,
    creates: Vec<(String, Option<String>)>,
    in_flight: usize,
    max_in_flight: usize,
}

/// A running fake; stops when dropped.
pub struct FakeCloudWatch {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::AbortHandle,
}

impl Drop for FakeCloudWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeCloudWatch {
    pub async fn start() -> FakeCloudWatch {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                tokio::spawn(serve(socket, Arc::clone(&shared)));
            }
        })
        .abort_handle();
        FakeCloudWatch { url, state, task }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state")
    }

    /// Faults for the next puts, one each, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Every put gets `fault` for the next `duration`.
    pub fn fault_for(&self, fault: Fault, duration: Duration) {
        self.lock().window = Some((Instant::now() + duration, fault));
    }

    /// Every put waits `delay` before it is handled.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    pub fn poison(&self, needle: &str) {
        self.lock().poison = Some(needle.to_string());
    }

    pub fn set_clock_offset(&self, offset_ms: i64) {
        self.lock().clock_offset_ms = offset_ms;
    }

    pub fn set_retention(&self, group: &str, days: i64) {
        self.lock().groups.entry(group.to_string()).or_default().retention_days = Some(days);
    }

    pub fn delete_stream(&self, group: &str, stream: &str) -> Vec<Stored> {
        self.lock().groups.get_mut(group).and_then(|g| g.streams.remove(stream)).unwrap_or_default()
    }

    pub fn delete_group(&self, group: &str) -> Vec<Stored> {
        self.lock().groups.remove(group).map(|g| g.streams.into_values().flatten().collect()).unwrap_or_default()
    }

    pub fn create_group(&self, group: &str) {
        self.lock().groups.entry(group.to_string()).or_default();
    }

    /// Every event stored in `group`, over all its streams.
    pub fn stored(&self, group: &str) -> Vec<Stored> {
        self.lock().groups.get(group).map(|g| g.streams.values().flatten().cloned().collect()).unwrap_or_default()
    }

    pub fn streams(&self, group: &str) -> Vec<String> {
        self.lock().groups.get(group).map(|g| g.streams.keys().cloned().collect()).unwrap_or_default()
    }

    pub fn puts(&self) -> Vec<PutCall> {
        self.lock().puts.clone()
    }

    /// CreateLogGroup (stream `None`) and CreateLogStream calls.
    pub fn creates(&self) -> Vec<(String, Option<String>)> {
        self.lock().creates.clone()
    }

    /// The most puts that were ever being handled at once.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }
}

enum Answer {
    Reply(u16, Value),
    /// Close without answering.
    Drop,
}

async fn serve(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let mut buffer = Vec::new();
    loop {
        let Some((target, body)) = read_request(&mut socket, &mut buffer).await else { return };
        let answer = handle(&state, &target, body).await;
        match answer {
            Answer::Drop => return,
            Answer::Reply(status, json) => {
                let body = json.to_string();
                let reason = if status == 200 { "OK" } else { "Error" };
                let mut head = format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n",
                    body.len()
                );
                if status != 200
                    && let Some(kind) = json.get("__type").and_then(Value::as_str)
                {
                    head.push_str(&format!("x-amzn-ErrorType: {kind}\r\n"));
                }
                head.push_str("\r\n");
                let written = async {
                    socket.write_all(head.as_bytes()).await?;
                    socket.write_all(body.as_bytes()).await
                };
                if written.await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads one request: its `X-Amz-Target` operation and its JSON body.
async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(String, Value)> {
    let mut chunk = [0u8; 65_536];
    let header_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    };
    let length: usize = header("content-length")?.parse().ok()?;
    let target = header("x-amz-target").unwrap_or_default();
    if header("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        socket.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.ok()?;
    }
    while buffer.len() < header_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body: Value = serde_json::from_slice(&buffer[header_end..header_end + length]).unwrap_or(Value::Null);
    buffer.drain(..header_end + length);
    let operation = target.rsplit('.').next().unwrap_or("").to_string();
    Some((operation, body))
}

fn error(kind: &str, message: &str) -> Answer {
    Answer::Reply(400, json!({"__type": kind, "message": message}))
}

fn now_ms(offset: i64) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    now.as_millis() as i64 + offset
}

async fn handle(state: &Arc<Mutex<State>>, operation: &str, body: Value) -> Answer {
    let lock = || state.lock().expect("fake state");
    let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    match operation {
        "CreateLogGroup" => {
            let name = text("logGroupName");
            let mut s = lock();
            s.creates.push((name.clone(), None));
            if s.groups.contains_key(&name) {
                return error("ResourceAlreadyExistsException", "The specified log group already exists");
            }
            s.groups.insert(name, Group::default());
            Answer::Reply(200, json!({}))
        }
        "CreateLogStream" => {
            let (group, stream) = (text("logGroupName"), text("logStreamName"));
            let mut s = lock();
            s.creates.push((group.clone(), Some(stream.clone())));
            let Some(g) = s.groups.get_mut(&group) else {
                return error("ResourceNotFoundException", "The specified log group does not exist.");
            };
            if g.streams.contains_key(&stream) {
                return error("ResourceAlreadyExistsException", "The specified log stream already exists");
            }
            g.streams.insert(stream, Vec::new());
            Answer::Reply(200, json!({}))
        }
        "PutRetentionPolicy" => {
            let days = body.get("retentionInDays").and_then(Value::as_i64);
            let mut s = lock();
            match s.groups.get_mut(&text("logGroupName")) {
                Some(g) => {
                    g.retention_days = days;
                    Answer::Reply(200, json!({}))
                }
                None => error("ResourceNotFoundException", "The specified log group does not exist."),
            }
        }
        "DescribeLogGroups" => {
            let prefix = text("logGroupNamePrefix");
            let s = lock();
            let groups: Vec<Value> = s
                .groups
                .keys()
                .filter(|name| name.starts_with(&prefix))
                .map(|name| json!({"logGroupName": name, "arn": format!("arn:aws:logs:us-east-1:1:log-group:{name}")}))
                .collect();
            Answer::Reply(200, json!({"logGroups": groups}))
        }
        "FilterLogEvents" => {
            let start = body.get("startTime").and_then(Value::as_i64).unwrap_or(i64::MIN);
            let end = body.get("endTime").and_then(Value::as_i64).unwrap_or(i64::MAX);
            let s = lock();
            let Some(g) = s.groups.get(&text("logGroupName")) else {
                return error("ResourceNotFoundException", "The specified log group does not exist.");
            };
            let mut events: Vec<&Stored> =
                g.streams.values().flatten().filter(|e| e.timestamp >= start && e.timestamp <= end).collect();
            events.sort_by_key(|e| e.timestamp);
            let events: Vec<Value> = events
                .iter()
                .map(|e| {
                    json!({"logStreamName": e.stream, "timestamp": e.timestamp, "message": e.message,
                           "ingestionTime": e.timestamp})
                })
                .collect();
            Answer::Reply(200, json!({"events": events}))
        }
        "PutLogEvents" => put_log_events(state, &body).await,
        other => error("UnknownOperationException", &format!("the fake does not know {other}")),
    }
}

async fn put_log_events(state: &Arc<Mutex<State>>, body: &Value) -> Answer {
    let lock = || state.lock().expect("fake state");
    let group = body.get("logGroupName").and_then(Value::as_str).unwrap_or("").to_string();
    let stream = body.get("logStreamName").and_then(Value::as_str).unwrap_or("").to_string();
    let events: Vec<(i64, String)> = body
        .get("logEvents")
        .and_then(Value::as_array)
        .map(|events| {
            events
                .iter()
                .map(|e| {
                    let ts = e.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
                    (ts, e.get("message").and_then(Value::as_str).unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let bytes: usize = events.iter().map(|(_, m)| m.len() + EVENT_OVERHEAD).sum();
    let delay = {
        let mut s = lock();
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        s.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (answer, slow) = {
        let mut s = lock();
        s.in_flight -= 1;
        let (fault, queued) = match &s.window {
            Some((until, fault)) if Instant::now() < *until => (Some(fault.clone()), false),
            _ => (s.faults.pop_front(), true),
        };
        let result = decide(&mut s, &group, &stream, &events, bytes, fault.clone());
        // A fault that needs a stored batch waits for a put that gets that far.
        let needs_store =
            matches!(fault, Some(Fault::SlowAfterStore(_) | Fault::DropAfterStore | Fault::Reject { .. }));
        if queued && needs_store && matches!(&result.0, Answer::Reply(status, _) if *status != 200) {
            s.faults.push_front(fault.expect("a fault"));
        }
        let error = match &result.0 {
            Answer::Drop => Some("dropped".to_string()),
            Answer::Reply(200, _) => None,
            Answer::Reply(_, json) => json.get("__type").and_then(Value::as_str).map(str::to_string),
        };
        s.puts.push(PutCall { events: events.len(), bytes, error });
        result
    };
    if let Some(slow) = slow {
        tokio::time::sleep(slow).await;
    }
    answer
}

/// Checks one put against the limits and the injected fault; stores what it accepts.
fn decide(
    s: &mut State,
    group: &str,
    stream: &str,
    events: &[(i64, String)],
    bytes: usize,
    fault: Option<Fault>,
) -> (Answer, Option<Duration>) {
    match &fault {
        Some(Fault::Throttle) => return (error("ThrottlingException", "Rate exceeded"), None),
        Some(Fault::Status(status)) => {
            let kind = if *status == 503 { "ServiceUnavailableException" } else { "InternalFailure" };
            return (Answer::Reply(*status, json!({"__type": kind, "message": "injected"})), None);
        }
        Some(Fault::DropBeforeStore) => return (Answer::Drop, None),
        Some(Fault::NotFound) => {
            return (error("ResourceNotFoundException", "The specified log stream does not exist."), None);
        }
        _ => {}
    }
    let invalid = |m: &str| (error("InvalidParameterException", m), None);
    if events.is_empty() {
        return invalid("At least one event is required");
    }
    if events.len() > MAX_EVENTS {
        return invalid("Too many log events in the batch");
    }
    if bytes > MAX_BYTES {
        return invalid("Log events in the batch are too large");
    }
    if events.windows(2).any(|w| w[1].0 < w[0].0) {
        return invalid("Log events in a single PutLogEvents request must be in chronological order.");
    }
    if events[events.len() - 1].0 - events[0].0 > MAX_SPAN_MS {
        return invalid("The batch of log events in a single PutLogEvents request cannot span more than 24 hours.");
    }
    if events.iter().any(|(_, m)| m.is_empty()) {
        return invalid("Log event message must have at least 1 character");
    }
    if let Some(poison) = &s.poison
        && events.iter().any(|(_, m)| m.contains(poison.as_str()))
    {
        return invalid("The log event is refused (poisoned)");
    }
    let now = now_ms(s.clock_offset_ms);
    let Some(g) = s.groups.get_mut(group) else {
        return (error("ResourceNotFoundException", "The specified log group does not exist."), None);
    };
    let retention_ms = g.retention_days.map(|d| d * 24 * 3600 * 1000);
    let Some(stored) = g.streams.get_mut(stream) else {
        return (error("ResourceNotFoundException", "The specified log stream does not exist."), None);
    };
    // What CloudWatch itself would refuse, then what the injected fault adds.
    let mut too_new_start = events.iter().position(|(ts, _)| *ts > now + MAX_FUTURE_MS);
    let mut too_old_end = events.iter().rposition(|(ts, _)| *ts < now - MAX_AGE_MS).map(|i| i + 1);
    // Too old is checked first: an event past 14 days counts as too old, not expired.
    let mut expired_end = retention_ms
        .and_then(|r| events.iter().rposition(|(ts, _)| *ts < now - r && *ts >= now - MAX_AGE_MS))
        .map(|i| i + 1);
    if let Some(Fault::Reject { too_new_start: n, too_old_end: o, expired_end: e }) = &fault {
        too_new_start = too_new_start.into_iter().chain(*n).min();
        too_old_end = too_old_end.into_iter().chain(*o).max();
        expired_end = expired_end.into_iter().chain(*e).max();
    }
    for (i, (ts, message)) in events.iter().enumerate() {
        let refused = too_new_start.is_some_and(|s| i >= s)
            || too_old_end.is_some_and(|e| i < e)
            || expired_end.is_some_and(|e| i < e);
        if !refused {
            stored.push(Stored { stream: stream.to_string(), timestamp: *ts, message: message.clone() });
        }
    }
    let mut rejected = serde_json::Map::new();
    if let Some(i) = too_new_start {
        rejected.insert("tooNewLogEventStartIndex".into(), json!(i));
    }
    if let Some(i) = too_old_end {
        rejected.insert("tooOldLogEventEndIndex".into(), json!(i));
    }
    if let Some(i) = expired_end {
        rejected.insert("expiredLogEventEndIndex".into(), json!(i));
    }
    let answer = if rejected.is_empty() {
        json!({"nextSequenceToken": "0"})
    } else {
        json!({"nextSequenceToken": "0", "rejectedLogEventsInfo": rejected})
    };
    match fault {
        Some(Fault::DropAfterStore) => (Answer::Drop, None),
        Some(Fault::SlowAfterStore(wait)) => (Answer::Reply(200, answer), Some(wait)),
        _ => (Answer::Reply(200, answer), None),
    }
}

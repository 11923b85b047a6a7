//! Local receivers for alert messages, over real connections: a Slack-style webhook receiver
//! (axum) and an SMTP sink (a small SMTP server over tokio TCP) that record what they get and
//! answer from a script, so failures, 429s and permanent errors happen exactly when a test says.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use logboard::config::Secret;
use logboard::config::alerts::{ChannelConfig, ChannelKind, SmtpConfig, SmtpTls};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The token in the receiver's webhook path, as Slack's URLs carry one: a secret.
pub const WEBHOOK_TOKEN: &str = "T0SECRET/B0SECRET/webhook-token-4f9a";
/// The password the SMTP sink accepts: a secret.
pub const SMTP_PASSWORD: &str = "smtp-password-8c1e";

// ---------------------------------------------------------------------------------------------
// The webhook receiver

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub path: String,
    pub body: Value,
    pub status: u16,
}

/// What the receiver answers next: a status and an optional `Retry-After`; once the script is
/// empty, 200 `ok`.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<u64>,
    /// Echo the request path in the body (a receiver that leaks the token back).
    pub echo_path: bool,
}

pub fn answer(status: u16) -> Answer {
    Answer { status, retry_after: None, echo_path: false }
}

#[derive(Default)]
pub struct ReceiverState {
    pub script: VecDeque<Answer>,
    pub received: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub state: Arc<Mutex<ReceiverState>>,
    /// The webhook URL, its token in the path as Slack's are.
    pub url: String,
}

impl Receiver {
    pub async fn start(script: Vec<Answer>) -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState { script: script.into(), received: Vec::new() }));
        let router = Router::new().fallback(receive).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        Receiver { state, url: format!("http://{addr}/services/{WEBHOOK_TOKEN}") }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("lock").received.clone()
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.status == 200).collect()
    }

    pub fn then_answer(&self, next: Vec<Answer>) {
        self.state.lock().expect("lock").script = next.into();
    }
}

pub async fn receive(State(state): State<Arc<Mutex<ReceiverState>>>, uri: Uri, body: String) -> Response {
    let mut state = state.lock().expect("lock");
    let next = state.script.pop_front().unwrap_or(answer(200));
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    state.received.push(Received { at: Instant::now(), path: uri.path().to_string(), body, status: next.status });
    let status = StatusCode::from_u16(next.status).expect("status");
    let mut headers = HeaderMap::new();
    if let Some(secs) = next.retry_after {
        headers.insert("retry-after", secs.to_string().parse().expect("header"));
    }
    let text = if next.echo_path { format!("no_service for {}", uri.path()) } else { "ok".to_string() };
    (status, headers, text).into_response()
}

pub fn slack_channel(name: &str, url: &str) -> ChannelConfig {
    ChannelConfig { name: name.into(), kind: ChannelKind::Slack, webhook_url: Some(Secret::new(url)), to: Vec::new() }
}

// ---------------------------------------------------------------------------------------------
// The SMTP sink

/// A message the sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub recipients: Vec<String>,
    pub data: String,
}

#[derive(Default)]
pub struct SinkState {
    /// Replies to `MAIL FROM`, in order; then `250 OK`.
    pub mail_from_replies: VecDeque<String>,
    pub mails: Vec<Mail>,
    /// Every AUTH attempt's decoded password.
    pub passwords: Vec<String>,
    /// Reply to a wrong password; the default echoes it back (a careless server).
    pub echo_password_on_failure: bool,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub state: Arc<Mutex<SinkState>>,
    pub port: u16,
}

impl SmtpSink {
    pub async fn start(mail_from_replies: Vec<&str>) -> SmtpSink {
        let state = Arc::new(Mutex::new(SinkState {
            mail_from_replies: mail_from_replies.into_iter().map(str::to_string).collect(),
            echo_password_on_failure: true,
            ..SinkState::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = smtp_session(socket, state).await;
                });
            }
        });
        SmtpSink { state, port }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().expect("lock").mails.clone()
    }

    pub fn smtp(&self, password: &str) -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: SmtpTls::None,
            username: "logboard".into(),
            password: Some(Secret::new(password)),
            from: "logboard <logboard@example.test>".into(),
        }
    }
}

/// One SMTP session: EHLO, AUTH PLAIN/LOGIN (the password must be [`SMTP_PASSWORD`]), MAIL,
/// RCPT, DATA, QUIT.
pub async fn smtp_session(socket: tokio::net::TcpStream, state: Arc<Mutex<SinkState>>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let (mut from, mut recipients) = (String::new(), Vec::new());
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME".to_string()
        } else if upper.starts_with("AUTH PLAIN") {
            let encoded = match line.split_whitespace().nth(2) {
                Some(encoded) => encoded.to_string(),
                None => {
                    write.write_all(b"334 \r\n").await?;
                    lines.next_line().await?.unwrap_or_default()
                }
            };
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).unwrap_or_default();
            let password = String::from_utf8_lossy(&decoded).rsplit('\0').next().unwrap_or("").to_string();
            auth_reply(&state, password)
        } else if upper.starts_with("AUTH LOGIN") {
            write.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            let _user = lines.next_line().await?;
            write.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            let encoded = lines.next_line().await?.unwrap_or_default();
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).unwrap_or_default();
            auth_reply(&state, String::from_utf8_lossy(&decoded).to_string())
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_string();
            recipients.clear();
            let scripted = state.lock().expect("lock").mail_from_replies.pop_front();
            scripted.unwrap_or_else(|| "250 OK".into())
        } else if upper.starts_with("RCPT TO:") {
            recipients.push(line[8..].trim().trim_matches(['<', '>']).to_string());
            "250 OK".into()
        } else if upper == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
                data.push_str("\r\n");
            }
            let mail = Mail { from: from.clone(), recipients: recipients.clone(), data };
            state.lock().expect("lock").mails.push(mail);
            "250 OK queued".into()
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            "250 OK".into()
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
    Ok(())
}

pub fn auth_reply(state: &Arc<Mutex<SinkState>>, password: String) -> String {
    let mut state = state.lock().expect("lock");
    state.passwords.push(password.clone());
    if password == SMTP_PASSWORD {
        "235 2.7.0 Authentication successful".into()
    } else if state.echo_password_on_failure {
        format!("535 5.7.8 bad credentials: {password}")
    } else {
        "535 5.7.8 bad credentials".into()
    }
}

pub fn email_channel(name: &str, to: &[&str]) -> ChannelConfig {
    ChannelConfig {
        name: name.into(),
        kind: ChannelKind::Email,
        webhook_url: None,
        to: to.iter().map(|s| s.to_string()).collect(),
    }
}

/// A received message's unfolded headers and its decoded text/plain and text/html parts.
pub struct Parsed {
    pub headers: String,
    pub text: String,
    pub html: String,
}

pub fn parse_mail(data: &str) -> Parsed {
    let (headers, _) = data.split_once("\r\n\r\n").expect("headers end");
    let headers = headers.replace("\r\n ", " ").replace("\r\n\t", " ");
    let boundary = headers.split("boundary=\"").nth(1).and_then(|b| b.split('"').next()).expect("a multipart boundary");
    let (mut text, mut html) = (String::new(), String::new());
    for part in data.split(&format!("--{boundary}")) {
        let Some((part_headers, body)) = part.split_once("\r\n\r\n") else { continue };
        let lower = part_headers.to_ascii_lowercase();
        assert!(lower.contains("content-transfer-encoding: base64") || !lower.contains("text/"), "{part_headers}");
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let decode = || {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(&compact).expect("base64"))
                .expect("utf-8")
        };
        if lower.contains("content-type: text/plain") {
            text = decode();
        } else if lower.contains("content-type: text/html") {
            html = decode();
        }
    }
    Parsed { headers, text, html }
}

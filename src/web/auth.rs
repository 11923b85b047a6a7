//! Who may read: dashboard users (Argon2id), their sessions, and read-API tokens.
//!
//! Pages and the read API take a session cookie; the read API also takes
//! `Authorization: Bearer <api token>` or HTTP Basic with a dashboard user.
//! Ingest keys are not handled here: they can write and never read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, Params};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;

use super::AppState;
use super::limits::ClientIp;
use crate::config::{Config, Secret};
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "logboard_session";
/// A session unused this long ends.
const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
/// A session ends this long after login, used or not.
const SESSION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// OWASP's Argon2id parameters: m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// The PHC string of `password`, as `logboard hash-password` prints it.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Ok(argon2().hash_password(password.as_bytes()).map_err(|e| anyhow!("hashing failed: {e}"))?.to_string())
}

pub fn parse_hash(phc: &str) -> Result<PasswordHash, String> {
    PasswordHash::new(phc).map_err(|e| e.to_string())
}

fn verify_password(password: &str, phc: &str) -> bool {
    parse_hash(phc).is_ok_and(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
}

/// A random password for the first start, when no user is configured.
pub fn generate_password() -> String {
    let bytes: [u8; 18] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Session {
    user: String,
    created: Instant,
    last_seen: Instant,
}

/// Failed logins allowed per user and per client IP within [`THROTTLE_WINDOW`].
const MAX_FAILED_LOGINS: u32 = 5;
/// How long failures are remembered, and how long a throttled user or IP waits.
const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Counts failed logins per user name and per client IP; after five, both are refused for a while.
#[derive(Default)]
pub struct LoginThrottle {
    /// "user:NAME" or "ip:ADDR" → (failures, when the first of them happened).
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// The throttle keys of one login attempt.
pub struct LoginAttempt {
    keys: [String; 2],
}

impl LoginThrottle {
    /// `Err(seconds to wait)` while the user or the IP is over its failures.
    pub fn check(&self, attempt: &LoginAttempt) -> Result<(), u64> {
        let Ok(mut failures) = self.failures.lock() else { return Ok(()) };
        let now = Instant::now();
        failures.retain(|_, (_, first)| now.duration_since(*first) < THROTTLE_WINDOW);
        let wait = attempt
            .keys
            .iter()
            .filter_map(|key| failures.get(key))
            .filter(|(count, _)| *count >= MAX_FAILED_LOGINS)
            .map(|(_, first)| (THROTTLE_WINDOW - now.duration_since(*first)).as_secs().max(1))
            .max();
        wait.map_or(Ok(()), Err)
    }

    pub fn record_failure(&self, attempt: &LoginAttempt) {
        if let Ok(mut failures) = self.failures.lock() {
            let now = Instant::now();
            for key in &attempt.keys {
                failures.entry(key.clone()).or_insert((0, now)).0 += 1;
            }
        }
    }

    /// A successful login clears the user's failures (the IP's stay: it may be guessing others).
    pub fn forget(&self, attempt: &LoginAttempt) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&attempt.keys[0]);
        }
    }
}

/// The dashboard's users and live sessions.
pub struct Auth {
    /// Failed-login counts.
    pub throttle: LoginThrottle,
    /// User name → Argon2id PHC string.
    users: HashMap<String, String>,
    api_tokens: Vec<Secret>,
    /// Session token → session. In memory: a restart logs everyone out.
    sessions: Mutex<HashMap<String, Session>>,
}

impl Auth {
    /// Users from the config; `admin_password` (re)defines `admin`.
    pub fn new(config: &Config, admin_password: Option<&str>) -> anyhow::Result<Auth> {
        let mut users: HashMap<String, String> =
            config.auth.users.iter().map(|u| (u.name.clone(), u.password_hash.clone())).collect();
        if let Some(password) = admin_password {
            users.insert("admin".into(), hash_password(password)?);
        }
        Ok(Auth {
            throttle: LoginThrottle::default(),
            users,
            api_tokens: config.auth.api_tokens.clone(),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// Checks a name and password; the same answer for an unknown user as for a wrong password.
    pub async fn check_password(&self, user: &str, password: &str) -> bool {
        // Verify even for unknown users so timing does not tell which names exist.
        const DUMMY: &str =
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0G0p8m1tSWFBsqfP0ZnGo7oPLAUVqUWVBTTUoFqmxi4";
        let (known, phc) = match self.users.get(user) {
            Some(phc) => (true, phc.clone()),
            None => (false, DUMMY.to_string()),
        };
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc)).await.unwrap_or(false);
        known && ok
    }

    pub fn login_attempt(&self, user: &str, ip: std::net::IpAddr) -> LoginAttempt {
        LoginAttempt { keys: [format!("user:{user}"), format!("ip:{ip}")] }
    }

    /// Starts a session and returns its token.
    pub fn start_session(&self, user: &str) -> String {
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, s| is_live(s, now));
            sessions.insert(token.clone(), Session { user: user.to_string(), created: now, last_seen: now });
        }
        token
    }

    pub fn end_session(&self, token: &str) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.remove(token);
        }
    }

    /// The user of a live session, touching it.
    fn session_user(&self, token: &str) -> Option<String> {
        let mut sessions = self.sessions.lock().ok()?;
        let now = Instant::now();
        let session = sessions.get_mut(token)?;
        if !is_live(session, now) {
            sessions.remove(token);
            return None;
        }
        session.last_seen = now;
        Some(session.user.clone())
    }

    fn is_api_token(&self, token: &str) -> bool {
        self.api_tokens.iter().any(|t| bool::from(t.expose().as_bytes().ct_eq(token.as_bytes())))
    }

    /// Who is asking: a session cookie, then (for the API) an API token or Basic credentials.
    /// Basic credentials count toward the same login throttle as the login form.
    pub async fn identify(
        &self,
        headers: &HeaderMap,
        client: std::net::IpAddr,
        allow_api_credentials: bool,
    ) -> Result<Option<String>, u64> {
        if let Some(user) = session_token(headers).and_then(|t| self.session_user(&t)) {
            return Ok(Some(user));
        }
        let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(authorization) = authorization.filter(|_| allow_api_credentials) else { return Ok(None) };
        if let Some(token) = authorization.strip_prefix("Bearer ") {
            return Ok(self.is_api_token(token.trim()).then(|| "api-token".to_string()));
        }
        let Some((user, password)) = basic_credentials(authorization) else { return Ok(None) };
        let attempt = self.login_attempt(&user, client);
        self.throttle.check(&attempt)?;
        if self.check_password(&user, &password).await {
            self.throttle.forget(&attempt);
            Ok(Some(user))
        } else {
            self.throttle.record_failure(&attempt);
            Ok(None)
        }
    }
}

fn basic_credentials(authorization: &str) -> Option<(String, String)> {
    let encoded = authorization.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn is_live(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_seen) < SESSION_IDLE && now.duration_since(session.created) < SESSION_MAX
}

pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value for a new session (`Secure` when the request came over https).
pub fn session_cookie(token: &str, headers: &HeaderMap) -> String {
    let secure = headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_MAX.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A logged-in reader of the JSON API; anyone else gets 401.
pub struct ApiUser(pub String);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(ClientIp(client)) = ClientIp::from_request_parts(parts, state).await;
        match state.auth.identify(&parts.headers, client, true).await {
            Ok(Some(user)) => Ok(ApiUser(user)),
            Ok(None) => Err(ApiError::Unauthorized(
                "log in, or send `Authorization: Bearer <api token>` or Basic credentials".into(),
            )),
            Err(retry_after_secs) => Err(ApiError::TooManyRequests {
                message: "too many failed logins; try again later".into(),
                retry_after_secs,
            }),
        }
    }
}

/// A logged-in dashboard user; anyone else is sent to the login page.
pub struct PageUser(pub String);

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match state.auth.identify(&parts.headers, std::net::Ipv4Addr::UNSPECIFIED.into(), false).await {
            Ok(Some(user)) => Ok(PageUser(user)),
            Ok(None) | Err(_) => {
                let next = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
                let target = format!("/login?next={}", urlencode(next));
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Only local paths may be redirect targets after login (no open redirect).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => path,
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong horse", &phc));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn sessions_end_when_idle_too_long_or_too_old() {
        let now = Instant::now() + SESSION_MAX + Duration::from_secs(60);
        let session =
            |age: Duration, idle: Duration| Session { user: "a".into(), created: now - age, last_seen: now - idle };
        assert!(is_live(&session(Duration::from_secs(3600), Duration::from_secs(60)), now));
        assert!(!is_live(&session(Duration::from_secs(3600), SESSION_IDLE), now), "idle expiry");
        assert!(!is_live(&session(SESSION_MAX, Duration::from_secs(1)), now), "absolute expiry");
    }

    #[test]
    fn redirects_after_login_stay_on_this_site() {
        assert_eq!(safe_next(Some("/logs?project=demo")), "/logs?project=demo");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_session_cookie_is_locked_down() {
        let mut headers = HeaderMap::new();
        let cookie = session_cookie("t", &headers);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"));
        headers.insert("x-forwarded-proto", "https".parse().expect("header"));
        assert!(session_cookie("t", &headers).ends_with("; Secure"));
    }
}

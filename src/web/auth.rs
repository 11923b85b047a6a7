//! Who may read: dashboard users (Argon2id), their sessions, and read-API tokens.
//!
//! Pages and the read API take a session cookie (signed: [`super::session`]); the read API also
//! takes `Authorization: Bearer <api token>` or HTTP Basic with a dashboard user.
//! Ingest keys are not handled here: they can write and never read.
//!
//! Every password and token check passes the [`Throttle`] first; password checks then wait for
//! one of a few places ([`PasswordChecks`]), since each holds 19 MiB of Argon2 memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::anyhow;
use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::AppState;
use super::error::ApiError;
use super::limits::ClientIp;
use super::session::{Session, Sessions, session_token, unix_now};
use super::throttle::{self, Refusal, Throttle};
use crate::config::{Config, Secret};
use crate::logout::Logouts;

/// OWASP's Argon2id parameters: m = 19 MiB, t = 2, p = 1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// The PHC string of `password`, as `logboard hash-password` prints it.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Ok(argon2().hash_password(password.as_bytes()).map_err(|e| anyhow!("hashing failed: {e}"))?.to_string())
}

fn parse_hash(phc: &str) -> Result<PasswordHash, String> {
    PasswordHash::new(phc).map_err(|e| e.to_string())
}

/// Checks `password` against the PHC string `phc`, with `memory` as Argon2's working memory
/// (grown to what the hash's `m` asks). Reusing it keeps the process at a few such buffers: when
/// each check allocated and freed its own, the allocator kept about 19 MiB per thread that had
/// ever run one.
fn verify_password(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = parse_hash(phc) else { return false };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        hash.version.map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::new());
    }
    let mut output = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut output,
        memory.as_mut_slice(),
    );
    hashed.is_ok() && bool::from(output.ct_eq(expected.as_bytes()))
}

/// Names longer than this are refused before any check runs (no configured name is this long).
const MAX_USER_NAME_BYTES: usize = 256;
/// Password checks running at once at most, whatever the machine: each holds 19 MiB, and more
/// than one per CPU only makes each slower.
const MAX_RUNNING_PASSWORD_CHECKS: usize = 8;
/// Checks that may wait for a running one, per running one; more are refused at once. At least
/// [`throttle::MAX_FAILURES`] fit, so a burst from one address is answered by the throttle (429).
const WAITING_PASSWORD_CHECKS_PER_RUNNING: usize = 4;
const _: () = assert!(1 + WAITING_PASSWORD_CHECKS_PER_RUNNING >= throttle::MAX_FAILURES as usize);
/// What a refusal for busy password checkers asks the client to wait.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// One password check per CPU, up to [`MAX_RUNNING_PASSWORD_CHECKS`].
fn running_password_checks() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get).min(MAX_RUNNING_PASSWORD_CHECKS)
}

/// The bound on password checks: a few run, a few more wait, the rest are refused (503). Without
/// it every failed login held 19 MiB at once: 150 in parallel took the process to 3 GB.
struct PasswordChecks {
    running: Arc<Semaphore>,
    admitted: Semaphore,
    /// Argon2 working memory of finished checks, for the next ones: at most one per running check.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Checks started, for tests and the curious.
    started: AtomicU64,
}

impl PasswordChecks {
    fn new(running: usize) -> PasswordChecks {
        PasswordChecks {
            running: Arc::new(Semaphore::new(running)),
            admitted: Semaphore::new(running * (1 + WAITING_PASSWORD_CHECKS_PER_RUNNING)),
            memory: Arc::default(),
            started: AtomicU64::new(0),
        }
    }

    async fn verify(&self, password: String, phc: String) -> Result<bool, Refusal> {
        let busy = Refusal::Busy { retry_after_secs: BUSY_RETRY_AFTER_SECS };
        let Ok(_admitted) = self.admitted.try_acquire() else { return Err(busy) };
        let Ok(running) = Arc::clone(&self.running).acquire_owned().await else { return Err(busy) };
        self.started.fetch_add(1, Ordering::Relaxed);
        // The permit goes with the check: a request dropped mid-check must not free its place
        // while Argon2 still runs on the blocking pool.
        let memory = Arc::clone(&self.memory);
        let check = move || {
            let _running = running;
            let take = || memory.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut blocks = take().unwrap_or_default();
            let ok = verify_password(&password, &phc, &mut blocks);
            memory.lock().unwrap_or_else(PoisonError::into_inner).push(blocks);
            ok
        };
        Ok(tokio::task::spawn_blocking(check).await.unwrap_or(false))
    }
}

/// The dashboard's users and live sessions.
pub struct Auth {
    /// Failed-check counts of passwords and tokens.
    throttle: Throttle,
    /// Bounds how many password checks run (and wait) at once.
    password_checks: PasswordChecks,
    /// User name → Argon2id PHC string.
    users: HashMap<String, String>,
    api_tokens: Vec<Secret>,
    /// Signs and checks session cookies (with `auth.session_secret`, or a random secret).
    sessions: Sessions,
    /// Logouts shared with the other tasks, when the state is shared.
    logouts: Option<Arc<dyn Logouts>>,
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
            throttle: Throttle::default(),
            password_checks: PasswordChecks::new(running_password_checks()),
            users,
            api_tokens: config.auth.api_tokens.clone(),
            sessions: Sessions::new(config.auth.session_secret.as_ref()),
            logouts: None,
        })
    }

    /// Logouts are recorded in, and read from, `logouts` as well: shared with the other tasks.
    pub fn share_logouts(&mut self, logouts: Arc<dyn Logouts>) {
        self.logouts = Some(logouts);
    }

    /// Checks a name and password from `client`: `Ok(true)` when right, `Ok(false)` when wrong,
    /// the same for an unknown user as for a wrong password. The failure is counted before the
    /// check runs and given back if it succeeds, so parallel guesses cannot pass the throttle.
    pub async fn check_login(&self, user: &str, password: &str, client: IpAddr) -> Result<bool, Refusal> {
        if user.len() > MAX_USER_NAME_BYTES {
            return Ok(false);
        }
        let reservation = self.throttle.reserve(self.throttle.password(user, client))?;
        match self.check_password(user, password).await {
            Ok(true) => {
                reservation.succeed();
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(busy) => {
                reservation.cancel();
                Err(busy)
            }
        }
    }

    async fn check_password(&self, user: &str, password: &str) -> Result<bool, Refusal> {
        // Verify even for unknown users so timing does not tell which names exist.
        const DUMMY: &str =
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0G0p8m1tSWFBsqfP0ZnGo7oPLAUVqUWVBTTUoFqmxi4";
        let (known, phc) = match self.users.get(user) {
            Some(phc) => (true, phc.clone()),
            None => (false, DUMMY.to_string()),
        };
        let ok = self.password_checks.verify(password.to_string(), phc).await?;
        Ok(known && ok)
    }

    /// How many password checks (Argon2 runs) have been started.
    pub fn password_checks_run(&self) -> u64 {
        self.password_checks.started.load(Ordering::Relaxed)
    }

    /// Starts a session and returns its cookie value.
    pub fn start_session(&self, user: &str) -> String {
        self.sessions.issue(user, unix_now())
    }

    /// Ends the session of a cookie (logout): on this task, and on every task when shared.
    pub async fn end_session(&self, token: &str) {
        let ended = self.sessions.revoke(token, unix_now());
        if let (Some((id, until)), Some(logouts)) = (ended, &self.logouts)
            && let Err(error) = logouts.record(&id, until).await
        {
            tracing::warn!(error = format!("{error:#}"), "the logout is known to this task only");
        }
    }

    /// Whether another task ended session `id`. A shared state that does not answer lets the
    /// session through: the dashboard stays usable while the table is down.
    async fn ended_elsewhere(&self, id: &str) -> bool {
        let Some(logouts) = &self.logouts else { return false };
        logouts.ended(id).await.unwrap_or_else(|error| {
            tracing::warn!(error = format!("{error:#}"), "could not read the shared logouts");
            false
        })
    }

    /// The live session of a cookie, for a user who still exists (a user removed from the config
    /// loses their sessions at the next start, as when sessions were kept in memory).
    fn session(&self, token: &str, now: u64) -> Option<Session> {
        self.sessions.open(token, now).filter(|s| self.users.contains_key(&s.user))
    }

    /// A re-issued cookie for a live session whose cookie is due for it (see
    /// [`super::session::refresh_cookie`]).
    pub fn refreshed_session(&self, token: &str, now: u64) -> Option<String> {
        self.sessions.refresh(&self.session(token, now)?, now)
    }

    /// Checks a read-API token from `client`; wrong ones are counted per address like passwords.
    fn check_api_token(&self, token: &str, client: IpAddr) -> Result<bool, Refusal> {
        let reservation = self.throttle.reserve(self.throttle.token(client))?;
        let known = self.api_tokens.iter().any(|t| bool::from(t.expose().as_bytes().ct_eq(token.as_bytes())));
        if known {
            reservation.succeed();
        }
        Ok(known)
    }

    /// Who is asking: a session cookie, then (for the API) an API token or Basic credentials.
    /// Basic credentials count toward the same throttle as the login form.
    pub async fn identify(
        &self,
        headers: &HeaderMap,
        client: IpAddr,
        allow_api_credentials: bool,
    ) -> Result<Option<String>, Refusal> {
        if let Some(session) = session_token(headers).and_then(|t| self.session(&t, unix_now()))
            && !self.ended_elsewhere(&session.id).await
        {
            return Ok(Some(session.user));
        }
        let Some((scheme, credentials)) = authorization(headers).filter(|_| allow_api_credentials) else {
            return Ok(None);
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            return Ok(self.check_api_token(credentials, client)?.then(|| "api-token".to_string()));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Ok(None);
        }
        let Some((user, password)) = basic_credentials(credentials) else { return Ok(None) };
        Ok(self.check_login(&user, &password, client).await?.then_some(user))
    }
}

/// The scheme and credentials of the `Authorization` header, e.g. `("Bearer", "abc")`. Schemes
/// are case-insensitive (RFC 7235): compare them with `eq_ignore_ascii_case`.
pub fn authorization(headers: &HeaderMap) -> Option<(&str, &str)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    Some((scheme, credentials.trim()))
}

/// The name and password of Basic credentials (base64 of `name:password`).
fn basic_credentials(encoded: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A logged-in reader of the JSON API; anyone else gets 401.
pub struct ApiUser(pub String);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Ok(ClientIp(client)) = ClientIp::from_request_parts(parts, state).await;
        match state.auth.identify(&parts.headers, client, true).await {
            Ok(Some(user)) => Ok(ApiUser(user)),
            Ok(None) => {
                let message = "log in, or send `Authorization: Bearer <api token>` or Basic credentials";
                let mut response = ApiError::Unauthorized(message.into()).into_response();
                // RFC 7235: a 401 names the schemes that would work.
                for challenge in API_CHALLENGES {
                    response.headers_mut().append(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
                }
                Err(response)
            }
            Err(refusal) => Err(ApiError::from(refusal).into_response()),
        }
    }
}

/// The `WWW-Authenticate` challenges of the read API's 401.
const API_CHALLENGES: [&str; 2] = [r#"Bearer realm="logboard""#, r#"Basic realm="logboard", charset="UTF-8""#];

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        match refusal {
            Refusal::TooMany { retry_after_secs } => ApiError::TooManyRequests {
                message: "too many failed attempts; try again later".into(),
                retry_after_secs,
            },
            Refusal::Busy { retry_after_secs } => {
                ApiError::Unavailable { message: "too many logins at once; try again shortly".into(), retry_after_secs }
            }
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
                let target = format!("/login?next={}", crate::links::urlencode(next));
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

/// The target to go to after login: a path on this site, or `/`. It is checked as a browser
/// reads it — tab, CR and LF dropped, `\\` taken for `/` — so `/\\evil.example` or `/\t/evil.example`
/// cannot leave the site; and it must be printable ASCII, as a `Location` header needs.
pub fn safe_next(next: Option<&str>) -> String {
    let Some(next) = next else { return "/".into() };
    let path: String =
        next.chars().filter(|c| !matches!(c, '\t' | '\r' | '\n')).map(|c| if c == '\\' { '/' } else { c }).collect();
    let local = path.starts_with('/') && !path.starts_with("//");
    if local && path.bytes().all(|b| b.is_ascii_graphic()) { path } else { "/".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let mut memory = Vec::new();
        assert!(verify_password("correct horse", &phc, &mut memory));
        assert_eq!(memory.len(), 19 * 1024, "one block per KiB of m");
        assert!(!verify_password("wrong horse", &phc, &mut memory));
        assert!(verify_password("correct horse", &phc, &mut memory), "reused memory gives the same hash");
        assert!(!verify_password("correct horse", "not a hash", &mut memory));
        // A hash with other parameters (two lanes, less memory) is checked with those.
        let params = Params::new(8192, 1, 2, Some(32)).expect("params");
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(b"pw", b"somesaltsomesalt")
            .expect("hash")
            .to_string();
        assert!(phc.starts_with("$argon2id$v=19$m=8192,t=1,p=2$"), "{phc}");
        assert!(verify_password("pw", &phc, &mut memory));
        assert!(!verify_password("pv", &phc, &mut memory));
    }

    #[tokio::test]
    async fn huge_user_names_are_refused_before_any_check_or_count() {
        let auth = Auth::new(&Config::default(), Some("right")).expect("auth");
        let client: IpAddr = "203.0.113.1".parse().expect("ip");
        let huge = "a".repeat(1_500_000);
        assert_eq!(auth.check_login(&huge, "right", client).await, Ok(false));
        assert_eq!(auth.check_login(&"a".repeat(MAX_USER_NAME_BYTES + 1), "right", client).await, Ok(false));
        assert_eq!(auth.password_checks_run(), 0, "no Argon2 run");
        assert!(auth.throttle.is_empty(), "nothing stored for them");
        assert_eq!(auth.check_login("admin", "right", client).await, Ok(true));
        assert_eq!(auth.password_checks_run(), 1);
    }

    #[tokio::test]
    async fn checks_beyond_the_running_and_waiting_places_are_refused_at_once() {
        let checks = PasswordChecks::new(1);
        let phc = hash_password("right").expect("hash");
        let all = (0..20).map(|_| checks.verify("wrong".into(), phc.clone()));
        let answers = futures_util::future::join_all(all).await;
        let busy = Refusal::Busy { retry_after_secs: BUSY_RETRY_AFTER_SECS };
        let admitted = 1 + WAITING_PASSWORD_CHECKS_PER_RUNNING;
        assert_eq!(answers.iter().filter(|a| **a == Ok(false)).count(), admitted, "{answers:?}");
        assert_eq!(answers.iter().filter(|a| **a == Err(busy)).count(), 20 - admitted, "{answers:?}");
        assert_eq!(checks.started.load(Ordering::Relaxed), admitted as u64);
        assert_eq!(checks.verify("right".into(), phc).await, Ok(true), "places are given back");
    }

    #[test]
    fn authorization_schemes_match_in_any_case() {
        let mut headers = HeaderMap::new();
        assert_eq!(authorization(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bEaReR  abc "));
        assert_eq!(authorization(&headers), Some(("bEaReR", "abc")));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert_eq!(authorization(&headers), None, "no credentials");
        assert_eq!(basic_credentials("YWRtaW46cDpx"), Some(("admin".into(), "p:q".into())));
        assert_eq!(basic_credentials("not base64!"), None);
    }

    #[test]
    fn redirects_after_login_stay_on_this_site() {
        assert_eq!(safe_next(Some("/logs?project=demo")), "/logs?project=demo");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        // Browsers drop tab, CR and LF in URLs and read `\\` as `/`.
        for sneaky in
            ["/\\evil.example", "\\\\evil.example", "/\t/evil.example", "/\r\n/evil.example", "\t//evil.example"]
        {
            assert_eq!(safe_next(Some(sneaky)), "/", "{sneaky:?}");
        }
        assert_eq!(safe_next(Some("/lo\tgs")), "/logs", "what the browser would open");
        // Not a valid Location header value: the login must not fail on it.
        assert_eq!(safe_next(Some("/logs\u{7f}")), "/");
        assert_eq!(safe_next(Some("/로그")), "/");
    }
}

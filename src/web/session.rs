//! Dashboard sessions as signed cookies, so that every task sharing `auth.session_secret` accepts
//! a session made on any of them (no sticky sessions, nothing shared but the secret).
//!
//! A cookie is `v1.PAYLOAD.MAC`: PAYLOAD the base64url JSON of a [`Session`] (id, user, created,
//! last seen; Unix seconds), MAC the HMAC-SHA256 of `v1.PAYLOAD` under the secret, compared in
//! constant time. Nothing is stored per session: a session is live while it is younger than
//! [`SESSION_MAX`] and was last seen less than [`SESSION_IDLE`] ago. "Last seen" lives in the
//! cookie, so idle expiry needs the cookie to be re-issued as it is used: [`refresh_cookie`] sends
//! a fresh one when the last one is older than [`REFRESH_AFTER_SECS`]; idle expiry is exact to
//! that much.
//!
//! Logout clears the cookie and this task remembers the session's id as revoked until the session
//! could no longer be live anyway ([`Sessions::revoke`]); with a shared state the other tasks
//! learn it from there (`crate::logout`), otherwise they may accept a copy of the cookie until it
//! expires (the operations spec allows it). Without a configured secret, a random
//! one per process: a restart logs everyone out.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::AppState;
use super::limits::OverHttps;
use crate::config::Secret;

pub const SESSION_COOKIE: &str = "logboard_session";
/// A session unused this long ends (seconds).
pub const SESSION_IDLE_SECS: u64 = 8 * 3600;
/// A session ends this long after login, used or not (seconds).
pub const SESSION_MAX_SECS: u64 = 7 * 24 * 3600;
/// A used session whose cookie was issued longer ago than this gets a new cookie, with the new
/// last-seen time; more often would send a cookie with every request.
pub const REFRESH_AFTER_SECS: u64 = 60;
/// How far ahead of this task's clock another task's times may be (clock skew between tasks).
const CLOCK_SKEW_SECS: u64 = 300;
/// Revoked ids kept at most. Only a valid session can be revoked and each needs a login (a
/// throttled password check), so this is reached only after days of logins; then the revocation
/// that would end soonest is forgotten first.
const MAX_REVOKED: usize = 100_000;
/// Cookies longer than this are not decoded (a real one is about 200 bytes).
const MAX_COOKIE_BYTES: usize = 2048;
const VERSION: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// What a session cookie says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "u")]
    pub user: String,
    /// Login time, Unix seconds.
    #[serde(rename = "c")]
    pub created: u64,
    /// When the cookie was last issued, Unix seconds.
    #[serde(rename = "s")]
    pub last_seen: u64,
}

impl Session {
    fn is_live(&self, now: u64) -> bool {
        self.created <= self.last_seen
            && self.last_seen <= now.saturating_add(CLOCK_SKEW_SECS)
            && now < self.created.saturating_add(SESSION_MAX_SECS)
            && now < self.last_seen.saturating_add(SESSION_IDLE_SECS)
    }
}

/// Signs and checks session cookies; remembers the ones logged out here.
pub struct Sessions {
    mac: HmacSha256,
    /// Revoked session id → when it would have ended anyway (Unix seconds).
    revoked: Mutex<HashMap<String, u64>>,
}

impl Sessions {
    /// Sessions signed with `secret`, or with a random secret of this process when none.
    pub fn new(secret: Option<&Secret>) -> Sessions {
        let random: [u8; 32] = rand::random();
        let key = secret.map_or(&random[..], |s| s.expose().as_bytes());
        // HMAC takes a key of any length; this cannot fail.
        let mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()));
        Sessions { mac, revoked: Mutex::default() }
    }

    /// A new session for `user`, as a cookie value.
    pub fn issue(&self, user: &str, now: u64) -> String {
        let id = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        self.encode(&Session { id, user: user.to_string(), created: now, last_seen: now })
    }

    fn encode(&self, session: &Session) -> String {
        let json = serde_json::to_vec(session).unwrap_or_default();
        let signed = format!("{VERSION}.{}", URL_SAFE_NO_PAD.encode(json));
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// The session of a cookie signed with this secret, whatever its times.
    fn verify(&self, token: &str) -> Option<Session> {
        if token.len() > MAX_COOKIE_BYTES {
            return None;
        }
        let (signed, tag) = token.rsplit_once('.')?;
        let payload = signed.strip_prefix(VERSION)?.strip_prefix('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        // Constant time: `verify_slice` compares with `subtle`.
        mac.verify_slice(&tag).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    /// The session of a cookie, if it is signed with this secret, live at `now`, and not revoked
    /// here.
    pub fn open(&self, token: &str, now: u64) -> Option<Session> {
        let session = self.verify(token).filter(|s| s.is_live(now))?;
        let revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner).contains_key(&session.id);
        (!revoked).then_some(session)
    }

    /// A new cookie for a session in use, with `now` as its last-seen time, when its cookie is
    /// older than [`REFRESH_AFTER_SECS`].
    pub fn refresh(&self, session: &Session, now: u64) -> Option<String> {
        (now >= session.last_seen.saturating_add(REFRESH_AFTER_SECS))
            .then(|| self.encode(&Session { last_seen: now, ..session.clone() }))
    }

    /// Ends the session of `token` on this task, and returns its id and when it would have ended
    /// anyway (for the other tasks). Only a valid, live session is remembered, so nobody can fill
    /// the list without logging in.
    pub fn revoke(&self, token: &str, now: u64) -> Option<(String, u64)> {
        let session = self.verify(token).filter(|s| s.is_live(now))?;
        // Another task may have re-issued the cookie since: it is good until its absolute end.
        let ends = session.created.saturating_add(SESSION_MAX_SECS);
        let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        if revoked.len() >= MAX_REVOKED {
            revoked.retain(|_, end| *end > now);
        }
        if revoked.len() >= MAX_REVOKED
            && let Some(soonest) = revoked.iter().min_by_key(|(_, end)| **end).map(|(id, _)| id.clone())
        {
            revoked.remove(&soonest);
        }
        revoked.insert(session.id.clone(), ends);
        Some((session.id, ends))
    }

    #[cfg(test)]
    fn revoked_count(&self) -> usize {
        self.revoked.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// Seconds since the Unix epoch on this machine's clock.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The session cookie's value in a request, if any.
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

/// The `Set-Cookie` value for a session (`Secure` when the request came over https).
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_MAX_SECS}{}",
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Middleware: a request with a live session whose cookie is due for a refresh gets a new cookie
/// on its answer, unless the answer sets the cookie itself (login, logout).
pub async fn refresh_cookie(
    State(state): State<AppState>,
    OverHttps(https): OverHttps,
    request: Request,
    next: Next,
) -> Response {
    let fresh = session_token(request.headers()).and_then(|token| state.auth.refreshed_session(&token, unix_now()));
    let mut response = next.run(request).await;
    if let Some(token) = fresh
        && !response.headers().contains_key(header::SET_COOKIE)
        && let Ok(value) = HeaderValue::from_str(&session_cookie(&token, https))
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn sessions(secret: &str) -> Sessions {
        Sessions::new(Some(&Secret::new(secret)))
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_cookie_opens_on_every_holder_of_the_secret_and_nowhere_else() {
        let a = sessions(SECRET);
        let token = a.issue("admin", NOW);
        let session = sessions(SECRET).open(&token, NOW + 5).expect("another task with the secret");
        assert_eq!((session.user.as_str(), session.created, session.last_seen), ("admin", NOW, NOW));
        assert_eq!(sessions("another secret, 32 bytes or more!!").open(&token, NOW), None);
        assert_eq!(Sessions::new(None).open(&token, NOW), None, "a random secret");
        assert_ne!(a.issue("admin", NOW), token, "each login has its own id");
    }

    #[test]
    fn a_tampered_cookie_is_refused() {
        let s = sessions(SECRET);
        let token = s.issue("viewer", NOW);
        let (signed, tag) = token.rsplit_once('.').expect("three parts");
        // Another user, the times pushed on, under the old signature.
        let forged = Session { id: "x".into(), user: "admin".into(), created: NOW, last_seen: NOW };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
        assert_eq!(s.open(&format!("{VERSION}.{payload}.{tag}"), NOW), None);
        // One character of the signature changed, or cut, or missing.
        let mut flipped = tag.to_string().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        for bad in [
            format!("{signed}.{flipped}"),
            format!("{signed}.{}", &tag[..tag.len() - 2]),
            signed.to_string(),
            format!("v2{}.{tag}", &signed[2..]),
            String::new(),
            "..".into(),
            format!("{token}{}", "A".repeat(MAX_COOKIE_BYTES)),
        ] {
            assert_eq!(s.open(&bad, NOW), None, "{bad}");
        }
        assert!(s.open(&token, NOW).is_some(), "the real one still opens");
    }

    #[test]
    fn a_session_ends_when_idle_too_long_or_too_old() {
        let s = sessions(SECRET);
        let token = s.issue("admin", NOW);
        assert!(s.open(&token, NOW + SESSION_IDLE_SECS - 1).is_some());
        assert_eq!(s.open(&token, NOW + SESSION_IDLE_SECS), None, "idle expiry");
        // Used every hour: refreshed, it outlives the idle limit, but not the absolute one.
        let mut token = token;
        let mut now = NOW;
        while now + 3600 < NOW + SESSION_MAX_SECS {
            now += 3600;
            let session = s.open(&token, now).expect("live while used");
            token = s.refresh(&session, now).expect("an hour-old cookie is re-issued");
        }
        assert!(s.open(&token, NOW + SESSION_MAX_SECS - 1).is_some());
        assert_eq!(s.open(&token, NOW + SESSION_MAX_SECS), None, "absolute expiry");
        // Times from the future (beyond clock skew) or out of order are not believed.
        let future =
            s.encode(&Session { id: "f".into(), user: "a".into(), created: NOW + 3600, last_seen: NOW + 3600 });
        assert_eq!(s.open(&future, NOW), None);
        let backwards = s.encode(&Session { id: "b".into(), user: "a".into(), created: NOW, last_seen: NOW - 10 });
        assert_eq!(s.open(&backwards, NOW), None);
    }

    #[test]
    fn a_cookie_is_refreshed_only_when_a_minute_old() {
        let s = sessions(SECRET);
        let session = s.open(&s.issue("admin", NOW), NOW).expect("live");
        assert_eq!(s.refresh(&session, NOW + REFRESH_AFTER_SECS - 1), None);
        let fresh = s.refresh(&session, NOW + REFRESH_AFTER_SECS).expect("refreshed");
        let reopened = s.open(&fresh, NOW + REFRESH_AFTER_SECS).expect("live");
        assert_eq!(reopened, Session { last_seen: NOW + REFRESH_AFTER_SECS, ..session });
    }

    #[test]
    fn a_revoked_session_is_refused_here_in_every_version_of_its_cookie() {
        let s = sessions(SECRET);
        let token = s.issue("admin", NOW);
        let session = s.open(&token, NOW).expect("live");
        let refreshed = s.refresh(&session, NOW + 600).expect("refreshed");
        s.revoke(&token, NOW + 700);
        assert_eq!(s.open(&token, NOW + 700), None);
        assert_eq!(s.open(&refreshed, NOW + 700), None, "same id");
        assert!(sessions(SECRET).open(&token, NOW + 700).is_some(), "another task did not see the logout");
        assert!(s.open(&s.issue("admin", NOW + 700), NOW + 700).is_some(), "a new login works");
        // Garbage and foreign cookies are not remembered.
        s.revoke("junk", NOW);
        s.revoke(&sessions("another secret, 32 bytes or more!!").issue("admin", NOW), NOW);
        assert_eq!(s.revoked_count(), 1);
    }

    #[test]
    fn the_revoked_list_stays_bounded_and_forgets_ended_sessions_first() {
        let s = sessions(SECRET);
        let old = s.issue("admin", NOW);
        s.revoke(&old, NOW);
        let tokens: Vec<String> = (1..MAX_REVOKED as u64).map(|i| s.issue("admin", NOW + i)).collect();
        for (i, token) in tokens.iter().enumerate() {
            s.revoke(token, NOW + i as u64 + 1);
        }
        assert_eq!(s.revoked_count(), MAX_REVOKED);
        let late = NOW + 1000;
        let one_more = s.issue("admin", late);
        s.revoke(&one_more, late);
        assert_eq!(s.revoked_count(), MAX_REVOKED, "bounded");
        assert_eq!(s.open(&one_more, late), None, "the newest revocation holds");
        assert!(s.open(&old, late).is_some(), "the one ending soonest was forgotten");
        assert_eq!(s.open(&tokens[0], late), None);
    }

    #[test]
    fn the_session_cookie_is_locked_down() {
        let cookie = session_cookie("t", false);
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"));
        assert!(session_cookie("t", true).ends_with("; Secure"));
    }
}

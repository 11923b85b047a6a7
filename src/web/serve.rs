//! The listener: accepts TCP connections and serves HTTP/1.1 on them with hyper, under the
//! connection cap and the header-read and idle timeouts of `[server]`. The product and the test
//! harness both serve through [`serve`].
//!
//! `axum::serve` gives hyper no timer, so none of hyper's timeouts fire there: a client that
//! trickled its headers or sent nothing kept its connection (and a file descriptor) for good.
//!
//! - Idle: hyper's `header_read_timeout` runs from the moment hyper waits for a request head, so it
//!   closes a keep-alive connection that sends no next request; it is set to `idle_timeout_secs`.
//!   That must stay above a load balancer's idle timeout (ALB: 60 s), or the balancer reuses a
//!   connection we are closing and answers 502.
//! - Header read: since hyper's timer cannot be shorter than the idle timeout, a [`HeadClock`] per
//!   connection closes it when a request head is not complete `header_read_timeout_secs` after its
//!   first byte (a new connection's first head: after the accept).
//! - Cap: `max_connections` connections are served normally. Past the cap, a connection gets one
//!   request under a short header timeout: `/healthz` and `/readyz` answered, anything else a quick
//!   503 with `Retry-After`. At most [`OVERFLOW_CONNECTIONS`] of those are open; a new one closes
//!   the oldest, so silent connections cannot keep a health check out. The cap is kept under the
//!   open-file limit, so `accept` does not run out of descriptors.
//!
//! Only HTTP/1.1 is spoken, as before (axum's `http2` feature is off): browsers use HTTP/2 only
//! over TLS, which ends at the load balancer.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tower::ServiceExt as _;

use super::error::ApiError;
use crate::config::ServerConfig;

/// Connections open past the cap, one request each, so that health checks still get through.
pub const OVERFLOW_CONNECTIONS: usize = 32;
/// Header-read timeout of an overflow connection (or the configured one, if shorter).
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// What an overflow connection answers; the load balancer and ECS ask these.
const OVERFLOW_PATHS: [&str; 2] = ["/healthz", "/readyz"];
/// `Retry-After` of the 503 an overflow connection gets for any other path.
const OVERFLOW_RETRY_AFTER_SECS: u64 = 1;
/// Descriptors kept for everything but client connections: the store, the spool, AWS, stdio.
const FILES_BESIDES_CONNECTIONS: u64 = 128;
/// After the shutdown signal, how long open connections may finish their requests: with the
/// store's flush, this stays under ECS's 30 s stop timeout.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// Pause after an `accept` error that is not the client's (out of descriptors): retrying at once
/// would spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);
/// At most one warning per this long while the cap is hit: an attacker must not flood the logs.
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` completes, then gives open connections up to
/// [`DRAIN_DEADLINE`] to finish.
pub async fn serve(listener: TcpListener, router: Router, config: &ServerConfig, shutdown: impl Future<Output = ()>) {
    let timeouts = Timeouts {
        header_read: Duration::from_secs(config.header_read_timeout_secs),
        idle: Duration::from_secs(config.idle_timeout_secs),
    };
    let max_connections =
        cap_under(config.max_connections, raise_open_file_limit(files_wanted(config.max_connections)));
    let regular = Arc::new(Semaphore::new(max_connections));
    let mut overflow = OverflowSlots::default();
    let graceful = GracefulShutdown::new();
    let mut cap_warning = CapWarning::default();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    pause_after_accept_error(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection { stream, peer, router: router.clone(), timeouts, watcher: graceful.watcher() };
        if let Ok(permit) = Arc::clone(&regular).try_acquire_owned() {
            tokio::spawn(connection.serve_regular(permit));
        } else {
            let evicted = overflow.make_room();
            cap_warning.note(max_connections, evicted);
            overflow.push(tokio::spawn(connection.serve_overflow()).abort_handle());
        }
    }
    drop(listener);
    tracing::info!(connections = graceful.count(), "stopped accepting; letting open connections finish");
    if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown()).await.is_err() {
        tracing::warn!(deadline_s = DRAIN_DEADLINE.as_secs(), "connections still open at the drain deadline");
    }
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header_read: Duration,
    idle: Duration,
}

/// One accepted connection, before it is served.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    timeouts: Timeouts,
    watcher: Watcher,
}

impl Connection {
    /// Keep-alive HTTP/1.1 under the idle timeout (hyper's) and the header-read timeout (ours).
    async fn serve_regular(self, _slot: OwnedSemaphorePermit) {
        let Connection { stream, peer, router, timeouts, watcher } = self;
        let clock = Arc::new(HeadClock::new());
        let io = TokioIo::new(ClockedStream { stream, clock: Arc::clone(&clock) });
        let service = {
            let clock = Arc::clone(&clock);
            service_fn(move |request| {
                clock.request_started();
                let answer = route(router.clone(), peer, request);
                let clock = Arc::clone(&clock);
                async move {
                    let response = answer.await;
                    clock.request_answered();
                    response
                }
            })
        };
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(timeouts.idle);
        let mut served = pin!(watcher.watch(builder.serve_connection(io, service)));
        loop {
            let check_at = clock.head_began().unwrap_or_else(Instant::now) + timeouts.header_read;
            tokio::select! {
                result = served.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = tokio::time::sleep_until(check_at) => {
                    if clock.head_began().is_some_and(|began| began.elapsed() >= timeouts.header_read) {
                        // Dropping the connection closes the socket.
                        tracing::debug!(peer = %peer, "request head not complete in time; closing");
                        return;
                    }
                }
            }
        }
    }

    /// One request under a short header timeout; only the health checks are routed.
    async fn serve_overflow(self) {
        let Connection { stream, peer, router, timeouts, watcher } = self;
        let service = service_fn(move |request: Request<Incoming>| {
            let answer = OVERFLOW_PATHS.contains(&request.uri().path()).then(|| route(router.clone(), peer, request));
            async move {
                match answer {
                    Some(answer) => answer.await,
                    None => Ok(axum::response::IntoResponse::into_response(ApiError::Unavailable {
                        message: "too many open connections; retry shortly".into(),
                        retry_after_secs: OVERFLOW_RETRY_AFTER_SECS,
                    })),
                }
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .keep_alive(false)
            .header_read_timeout(OVERFLOW_HEADER_TIMEOUT.min(timeouts.header_read));
        if let Err(e) = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await {
            tracing::debug!(peer = %peer, error = %e, "overflow connection ended with an error");
        }
    }
}

/// Hands a request to the router, with the peer address handlers read the client IP from.
fn route(
    router: Router,
    peer: SocketAddr,
    mut request: Request<Incoming>,
) -> impl Future<Output = Result<Response<Body>, Infallible>> {
    request.extensions_mut().insert(ConnectInfo(peer));
    router.oneshot(request.map(Body::new))
}

/// When the request head now being read began, for the header-read timeout: at the accept for a
/// new connection's first request, at the first byte after the last answer for the next one.
/// Nothing is timed while a request is handled, nor between requests before a byte arrives (that
/// wait is hyper's idle timeout).
struct HeadClock {
    origin: Instant,
    /// [`WAITING`], [`HANDLING`], or 1 + the milliseconds after `origin` at which the head began.
    state: AtomicU64,
}

const WAITING: u64 = 0;
const HANDLING: u64 = u64::MAX;

impl HeadClock {
    fn new() -> HeadClock {
        HeadClock { origin: Instant::now(), state: AtomicU64::new(1) }
    }

    fn bytes_arrived(&self) {
        let stamp = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(HANDLING - 2) + 1;
        let _ = self.state.compare_exchange(WAITING, stamp.min(HANDLING - 1), Ordering::Relaxed, Ordering::Relaxed);
    }

    fn request_started(&self) {
        self.state.store(HANDLING, Ordering::Relaxed);
    }

    fn request_answered(&self) {
        self.state.store(WAITING, Ordering::Relaxed);
    }

    fn head_began(&self) -> Option<Instant> {
        match self.state.load(Ordering::Relaxed) {
            WAITING | HANDLING => None,
            stamp => Some(self.origin + Duration::from_millis(stamp - 1)),
        }
    }
}

/// The client's socket, telling its [`HeadClock`] when bytes arrive.
struct ClockedStream {
    stream: TcpStream,
    clock: Arc<HeadClock>,
}

impl AsyncRead for ClockedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_arrived();
        }
        polled
    }
}

impl AsyncWrite for ClockedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The tasks serving connections past the cap, oldest first.
#[derive(Default)]
struct OverflowSlots {
    tasks: VecDeque<AbortHandle>,
}

impl OverflowSlots {
    /// Closes the oldest overflow connection if all [`OVERFLOW_CONNECTIONS`] are open; true if it did.
    fn make_room(&mut self) -> bool {
        self.tasks.retain(|task| !task.is_finished());
        if self.tasks.len() < OVERFLOW_CONNECTIONS {
            return false;
        }
        self.tasks.pop_front().inspect(AbortHandle::abort).is_some()
    }

    fn push(&mut self, task: AbortHandle) {
        self.tasks.push_back(task);
    }
}

/// Counts connections past the cap, logged at most once per [`CAP_WARNING_INTERVAL`].
#[derive(Default)]
struct CapWarning {
    last: Option<Instant>,
    overflowed: u64,
    evicted: u64,
}

impl CapWarning {
    fn note(&mut self, max_connections: usize, evicted: bool) {
        self.overflowed += 1;
        self.evicted += u64::from(evicted);
        if self.last.is_some_and(|last| last.elapsed() < CAP_WARNING_INTERVAL) {
            return;
        }
        tracing::warn!(
            max_connections,
            health_checks_only = self.overflowed,
            oldest_closed = self.evicted,
            "connection cap reached: new connections get only /healthz and /readyz (server.max_connections)"
        );
        *self = CapWarning { last: Some(Instant::now()), overflowed: 0, evicted: 0 };
    }
}

async fn pause_after_accept_error(error: &io::Error) {
    // The client gave up between connect and accept: nothing is wrong here.
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %error, "cannot accept connections");
    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
}

/// Descriptors the process needs when `max_connections` and every overflow slot are in use.
fn files_wanted(max_connections: usize) -> u64 {
    max_connections as u64 + OVERFLOW_CONNECTIONS as u64 + FILES_BESIDES_CONNECTIONS
}

/// The connection cap to serve with: `max_connections`, lowered (with a warning) so that all
/// connections fit under the open-file limit (`None`: unlimited).
fn cap_under(max_connections: usize, open_file_limit: Option<u64>) -> usize {
    let Some(limit) = open_file_limit else { return max_connections };
    if limit >= files_wanted(max_connections) {
        return max_connections;
    }
    let room = limit.saturating_sub(OVERFLOW_CONNECTIONS as u64 + FILES_BESIDES_CONNECTIONS).max(1);
    let cap = usize::try_from(room).unwrap_or(max_connections).min(max_connections);
    tracing::warn!(
        max_connections,
        serving = cap,
        open_file_limit = limit,
        "server.max_connections does not fit under the open-file limit (ulimit -n); serving fewer connections"
    );
    cap
}

/// Raises the soft open-file limit towards `wanted` (up to the hard limit) and returns the limit
/// now in force; `None` when unlimited.
#[cfg(unix)]
fn raise_open_file_limit(wanted: u64) -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let current = current?;
    let raised = maximum.map_or(wanted, |hard| hard.min(wanted));
    if raised > current && setrlimit(Resource::Nofile, Rlimit { current: Some(raised), maximum }).is_ok() {
        return Some(raised);
    }
    Some(current)
}

#[cfg(not(unix))]
fn raise_open_file_limit(_wanted: u64) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_kept_when_it_fits_under_the_open_file_limit() {
        assert_eq!(cap_under(1024, None), 1024);
        assert_eq!(cap_under(1024, Some(65_535)), 1024);
        assert_eq!(cap_under(1024, Some(files_wanted(1024))), 1024);
    }

    #[test]
    fn the_cap_is_lowered_to_leave_room_for_overflow_slots_and_other_files() {
        let limit = 1024;
        let cap = cap_under(1024, Some(limit));
        assert_eq!(cap, 1024 - OVERFLOW_CONNECTIONS - FILES_BESIDES_CONNECTIONS as usize);
        assert_eq!(files_wanted(cap), limit);
        assert_eq!(cap_under(1024, Some(10)), 1, "at least one connection is served");
    }

    #[tokio::test]
    async fn a_head_is_timed_from_the_accept_then_from_its_first_byte_and_never_while_handled() {
        let clock = HeadClock::new();
        assert!(clock.head_began().is_some(), "a new connection's first head is timed from the accept");
        clock.request_started();
        clock.bytes_arrived();
        assert_eq!(clock.head_began(), None, "body bytes of a request being handled are not a head");
        clock.request_answered();
        assert_eq!(clock.head_began(), None, "an idle keep-alive connection is hyper's to time");
        tokio::time::sleep(Duration::from_millis(20)).await;
        clock.bytes_arrived();
        let began = clock.head_began().expect("the next head began with its first byte");
        assert!(began >= clock.origin + Duration::from_millis(20), "{:?}", began - clock.origin);
        clock.bytes_arrived();
        assert_eq!(clock.head_began(), Some(began), "later bytes of the same head do not restart it");
    }
}

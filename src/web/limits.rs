//! Rate limits of the public ingest endpoint: a byte token bucket per ingest key and a request
//! rate per client IP, and which IP is the client's behind trusted proxies.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;

use crate::config::{LimitsConfig, parse_ip_net};

/// The longest `Retry-After` we ever ask for (security.md).
const MAX_RETRY_AFTER_SECS: u64 = 300;
/// Above this many tracked keys or IPs, full (idle) buckets are forgotten.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by key: `rate` tokens per second up to `burst`.
struct Buckets<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> Buckets<K> {
    fn new(rate: f64, burst: f64) -> Self {
        Self { rate, burst, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes `cost` tokens, or says how many seconds until they would be there.
    fn take(&self, key: &K, cost: f64, now: Instant) -> Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() > MAX_TRACKED {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + rate * now.duration_since(b.updated).as_secs_f64() < burst);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket { tokens: self.burst, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            Ok(())
        } else {
            let wait = ((cost.min(self.burst) - bucket.tokens) / self.rate).ceil();
            Err((wait as u64).clamp(1, MAX_RETRY_AFTER_SECS))
        }
    }
}

pub struct RateLimits {
    key_bytes: Buckets<String>,
    ip_requests: Option<Buckets<IpAddr>>,
    trusted_proxies: Vec<(IpAddr, u8)>,
}

impl RateLimits {
    pub fn new(limits: &LimitsConfig, trusted_proxies: &[String]) -> RateLimits {
        let ip_rate = limits.ip_requests_per_sec as f64;
        RateLimits {
            key_bytes: Buckets::new(limits.key_bytes_per_sec as f64, limits.key_burst_bytes as f64),
            // A second's worth of requests as the burst.
            ip_requests: (limits.ip_requests_per_sec > 0).then(|| Buckets::new(ip_rate, ip_rate)),
            trusted_proxies: trusted_proxies.iter().filter_map(|p| parse_ip_net(p)).collect(),
        }
    }

    /// One request from `ip`; `Err(seconds)` when over the per-IP rate.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), u64> {
        match &self.ip_requests {
            Some(buckets) => buckets.take(&ip, 1.0, Instant::now()),
            None => Ok(()),
        }
    }

    /// `bytes` more for an ingest key; `Err(seconds)` when over its token bucket.
    pub fn take_key_bytes(&self, key: &str, bytes: usize) -> Result<(), u64> {
        self.key_bytes.take(&key.to_string(), bytes as f64, Instant::now())
    }

    /// The client's address: the peer, unless the peer is a trusted proxy, in which case the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|part| part.trim().parse().ok())
            .collect();
        forwarded.into_iter().rev().find(|ip| !self.is_trusted(*ip)).unwrap_or(peer)
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|(net, bits)| in_network(ip, *net, *bits))
    }
}

/// The client's address as [`RateLimits::client_ip`] sees it (unspecified without a socket).
pub struct ClientIp(pub IpAddr);

/// Whether the client reached the service over https: `X-Forwarded-Proto` counts only when a
/// trusted proxy set it, as for client addresses.
pub struct OverHttps(pub bool);

impl FromRequestParts<AppState> for OverHttps {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let forwarded_https =
            parts.headers.get("x-forwarded-proto").is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
        Ok(OverHttps(forwarded_https && state.limits.is_trusted(peer(parts))))
    }
}

/// The address at the other end of the connection (unspecified without a socket).
fn peer(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip())
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(state.limits.client_ip(peer(parts), &parts.headers)))
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_its_burst_then_asks_to_wait_for_the_refill() {
        let buckets = Buckets::new(100.0, 300.0);
        let start = Instant::now();
        assert_eq!(buckets.take(&"k", 300.0, start), Ok(()));
        assert_eq!(buckets.take(&"k", 150.0, start), Err(2), "150 bytes at 100/s need 2 s");
        assert_eq!(buckets.take(&"other", 300.0, start), Ok(()), "keys are separate");
        assert_eq!(buckets.take(&"k", 150.0, start + Duration::from_millis(1500)), Ok(()));
    }

    #[test]
    fn retry_after_is_at_least_one_and_at_most_300_seconds() {
        let buckets = Buckets::new(1.0, 1000.0);
        let now = Instant::now();
        assert_eq!(buckets.take(&"k", 1000.0, now), Ok(()));
        assert_eq!(buckets.take(&"k", 1000.0, now), Err(300));
        let fast = Buckets::new(1000.0, 10.0);
        assert_eq!(fast.take(&"k", 10.0, now), Ok(()));
        assert_eq!(fast.take(&"k", 1.0, now), Err(1));
    }

    #[test]
    fn the_client_ip_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() {
        let limits = RateLimits::new(&LimitsConfig::default(), &["10.0.0.0/8".into()]);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.1.7".parse().expect("header"));
        let proxy: IpAddr = "10.0.0.5".parse().expect("ip");
        let stranger: IpAddr = "198.51.100.1".parse().expect("ip");
        assert_eq!(limits.client_ip(proxy, &headers), "203.0.113.9".parse::<IpAddr>().expect("ip"));
        assert_eq!(limits.client_ip(stranger, &headers), stranger, "a spoofed header from a stranger is ignored");
        assert_eq!(limits.client_ip(proxy, &HeaderMap::new()), proxy);
    }
}
